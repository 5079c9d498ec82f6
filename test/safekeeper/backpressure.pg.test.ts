/**
 * Backpressure: a safekeeper holds back its acks while the pageserver lags too far behind commit_lsn, so
 * the compute's commits wait instead of the pageserver falling behind without bound. The pageserver is
 * played by a replication client whose feedback the test controls.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { formatLsn, type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { PgClient } from '../../src/protocol/client.js'
import { encodeStandbyStatusUpdate, parseXLogData } from '../../src/protocol/replication.js'
import { defaultSafekeeperConfig, type SafekeeperConfig } from '../../src/safekeeper/config.js'
import { Safekeeper } from '../../src/safekeeper/safekeeper.js'
import { jsonRequest } from '../harness/http.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'

const TENANT = 'c3'.repeat(16)
const TIMELINE = 'd4'.repeat(16)
const MAX_LAG = 256 * 1024

let dir: string
let sk: Safekeeper
let config: SafekeeperConfig
let pg: PgCluster
let reader: PgClient
let api: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-sk-bp-'))
  config = {
    ...defaultSafekeeperConfig(1),
    listenPgAddr: { host: '127.0.0.1', port: await freePort() },
    listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
    maxReplicationWriteLag: MAX_LAG,
  }
  api = `http://127.0.0.1:${config.listenHttpAddr.port}`
  sk = await Safekeeper.start(dir, { config, log: () => {} })
  pg = await startPostgres({
    name: 'sk-bp',
    settings: { wal_level: 'replica', max_wal_senders: 10, synchronous_commit: 'on', wal_keep_size: '1GB' },
  })
  await pg.sql('CHECKPOINT')
  const start = await pg.sql('SELECT pg_current_wal_insert_lsn()')
  const systemId = await pg.sql('SELECT system_identifier FROM pg_control_system()')
  await jsonRequest(api, 'POST', '/v1/tenant/timeline', {
    tenant_id: TENANT,
    timeline_id: TIMELINE,
    system_id: systemId,
    start_lsn: start,
  })
  await jsonRequest(api, 'PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
    connstr: pg.connectionString(),
    term: 1,
  })
  await pg.sql(["ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (sk1)'", 'SELECT pg_reload_conf()'])
  await pg.sql('CREATE TABLE t (i int, pad text)')
})

afterAll(async () => {
  await reader?.close()
  await sk?.stop()
  await pg?.destroy()
  await rm(dir, { recursive: true, force: true })
})

describe('backpressure', () => {
  it('holds commits while the pageserver lags by more than max_replication_write_lag, and lets them go when it catches up', async () => {
    reader = await PgClient.connect({
      ...config.listenPgAddr,
      user: 'postgres',
      params: {
        replication: 'true',
        application_name: 'pageserver',
        options: `-c tenant_id=${TENANT} -c timeline_id=${TIMELINE}`,
      },
    })
    const detail = (await jsonRequest(api, 'GET', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).json
    const from: Lsn = parseLsn(detail.commit_lsn)
    const stream = await reader.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(from)}`)
    let received = from
    void (async () => {
      for await (const msg of stream)
        if (msg[0] === 0x77) received = parseXLogData(msg).walStart + parseXLogData(msg).data.length
    })()
    // The "pageserver" says it has nothing beyond where it started.
    stream.send(encodeStandbyStatusUpdate({ write: from, flush: from, apply: from }))
    await new Promise((r) => setTimeout(r, 200))

    let done = false
    const big = pg
      .sql("INSERT INTO t SELECT i, repeat('x', 1000) FROM generate_series(1, 2000) i")
      .then(() => {
        done = true
      })
    await new Promise((r) => setTimeout(r, 2000))
    expect(done).toBe(false)
    const metrics = await (await fetch(`${api}/metrics`)).text()
    expect(Number(/^safekeeper_acks_delayed_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0)

    // It catches up: the ack goes out and the commit returns.
    for (let i = 0; i < 100 && !done; i++) {
      stream.send(encodeStandbyStatusUpdate({ write: received, flush: received, apply: received }))
      await new Promise((r) => setTimeout(r, 50))
    }
    await big
    expect(await pg.sql('SELECT count(*) FROM t')).toBe('2000')

    // Held again: a compute shutting down asks for a reply and gets the truth, so it stops at once
    // instead of waiting for a pageserver that may never catch up.
    stream.send(encodeStandbyStatusUpdate({ write: received, flush: received, apply: received }))
    await new Promise((r) => setTimeout(r, 200))
    const held = pg
      .sql("INSERT INTO t SELECT i, repeat('y', 1000) FROM generate_series(1, 2000) i")
      .catch(() => null)
    await new Promise((r) => setTimeout(r, 1500))
    const acksDelayed = async () =>
      Number(/^safekeeper_acks_delayed_total (\d+)$/m.exec(await (await fetch(`${api}/metrics`)).text())?.[1])
    const delayed = await acksDelayed()
    const written = parseLsn(await pg.sql('SELECT pg_current_wal_flush_lsn()'))
    const t0 = Date.now()
    await pg.stop('fast')
    expect(Date.now() - t0).toBeLessThan(15_000)
    await held
    expect(await acksDelayed()).toBeGreaterThanOrEqual(delayed)
    const d = (await jsonRequest(api, 'GET', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).json
    // Everything the compute wrote before it stopped is here, its shutdown checkpoint too.
    expect(parseLsn(d.flush_lsn)).toBeGreaterThan(written)
  })
})
