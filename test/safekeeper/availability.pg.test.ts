/**
 * Availability of a quorum of three safekeepers under a real compute (`ANY 2 (sk1, sk2, sk3)`) with the
 * pageserver following them, as a cluster runs: idle for a minute nobody reconnects (Neon's
 * test_idle_reconnections), and with two of three down a commit waits until one is back, then finishes at
 * once (Neon's test_unavailability).
 *
 * START_REPLICATION requests are counted on both sides of the safekeepers: their walsenders' counter in
 * /metrics (the pageserver and peers), and the compute's own log of the replication commands it received
 * (`log_replication_commands`: the safekeepers' pulls).
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatHostPort } from '../../src/lib/host-port.js'
import { generateId } from '../../src/lib/ids.js'
import type { Pageserver } from '../../src/pageserver/pageserver.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { jsonRequest } from '../harness/http.js'
import { computeFromPageService } from '../harness/page-service.js'
import { startTestPageserver } from '../harness/pageserver.js'
import type { PgCluster } from '../harness/postgres.js'
import { computeFlush, SafekeeperSet } from '../harness/safekeepers.js'
import { sleep, waitUntil } from '../harness/wait.js'

const IDLE_MS = 60_000

let dir: string
let ps: Pageserver
let psApi: string
let psPgPort: number
let sks: SafekeeperSet
let compute: PgCluster
let tlPath: string
const psLogged: { level: string; msg: string }[] = []

const psTimeline = async () => (await jsonRequest(psApi, 'GET', tlPath)).json

/** START_REPLICATION requests so far: served by the safekeepers' walsenders, and received by the compute. */
async function startReplications(): Promise<{ walsenders: number; compute: number }> {
  let walsenders = 0
  for (const n of sks.nodes) {
    const text = await (await fetch(`http://${sks.httpAddr(n)}/metrics`)).text()
    const m = /^safekeeper_start_replication_total (\d+)$/m.exec(text)
    if (!m) throw new Error(`safekeeper ${n.config.id} has no safekeeper_start_replication_total:\n${text}`)
    walsenders += Number(m[1])
  }
  const log = readFileSync(compute.logFile, 'utf8')
  return { walsenders, compute: log.match(/received replication command: START_REPLICATION/g)?.length ?? 0 }
}

const quorumStandbys = async () =>
  Number(await compute.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'"))

/** Every safekeeper streams from the compute and the pageserver from a safekeeper, up to the compute's flush. */
async function connectedAndCaughtUp(): Promise<void> {
  await waitUntil('sk1..3 to be quorum standbys', async () => (await quorumStandbys()) === 3)
  const flushed = await computeFlush(compute)
  await waitUntil('the pageserver to stream what the compute flushed', async () => {
    const t = await psTimeline()
    return t.walreceiver_status === 'streaming' && parseLsn(t.last_record_lsn) >= flushed
  })
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-sk-avail-'))
  ;({
    ps,
    api: psApi,
    pgPort: psPgPort,
  } = await startTestPageserver(path.join(dir, 'pageserver'), (level, msg) => psLogged.push({ level, msg })))
  const tenant = (await jsonRequest(psApi, 'POST', '/v1/tenant', {})).json as string
  const timeline = generateId()
  const tl = await jsonRequest(psApi, 'POST', `/v1/tenant/${tenant}/timeline`, { new_timeline_id: timeline })
  expect(tl.status).toBe(201)
  tlPath = `/v1/tenant/${tenant}/timeline/${timeline}`
  sks = await SafekeeperSet.create(3, { tenant, timeline })
  await sks.startAll()
  compute = await computeFromPageService(psPgPort, tenant, timeline, {
    name: 'sk-availability',
    settings: {
      synchronous_commit: 'on',
      synchronous_standby_names: 'ANY 2 (sk1, sk2, sk3)',
      wal_keep_size: '1GB',
      log_replication_commands: 'on',
    },
  })
  const systemId = await compute.sql('SELECT system_identifier FROM pg_control_system()')
  await sks.createTimeline(systemId, tl.json.last_record_lsn, 16 * 1024 * 1024)
  for (const n of sks.nodes) await sks.setCompute(n, compute.connectionString(), 1)
  const rx = await jsonRequest(psApi, 'PUT', `${tlPath}/wal_receiver`, {
    safekeepers: sks.nodes.map((n) => ({
      id: n.config.id,
      pg: formatHostPort(n.config.listenPgAddr),
      http: sks.httpAddr(n),
    })),
  })
  expect(rx.status).toBe(200)
  await compute.sql("CREATE TABLE t AS SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 1000) i")
  await connectedAndCaughtUp()
})

afterAll(async () => {
  await compute?.destroy()
  await ps?.stop()
  await sks?.destroy()
  await rm(dir, { recursive: true, force: true })
  // Safekeepers going away are warnings; an error would be a bug.
  expect(sks.logged.filter((l) => l.level === 'error')).toEqual([])
  expect(psLogged.filter((l) => l.level === 'error')).toEqual([])
})

describe('a quorum of three safekeepers', () => {
  it(
    'idles for a minute with at most 5 START_REPLICATION requests in all (test_idle_reconnections)',
    async () => {
      const before = await startReplications()
      await sleep(IDLE_MS)
      const after = await startReplications()
      const made = {
        walsenders: after.walsenders - before.walsenders,
        compute: after.compute - before.compute,
      }
      console.log(
        `START_REPLICATION in ${IDLE_MS / 1000} s idle: ${made.walsenders} served by the safekeepers, ` +
          `${made.compute} received by the compute (since start: ${after.walsenders} and ${after.compute})`,
      )
      expect(made.walsenders + made.compute).toBeLessThanOrEqual(5)
      // Quiet because connected, not because nothing connects: all of it still streams, and WAL flows.
      expect(await quorumStandbys()).toBe(3)
      expect((await psTimeline()).walreceiver_status).toBe('streaming')
      await compute.sql("INSERT INTO t VALUES (-1, 'after idling')")
      await connectedAndCaughtUp()
    },
    IDLE_MS + 30_000,
  )

  it('holds an INSERT while two of three are down, and finishes it once one is back (test_unavailability)', async () => {
    const [, sk2, sk3] = sks.nodes
    await sks.stop(sk2)
    await sks.stop(sk3)
    const done = { at: 0 }
    const insert = compute.sql("INSERT INTO t VALUES (-2, 'one of three')").then(() => {
      done.at = Date.now()
    })
    await sleep(2000)
    expect(done.at).toBe(0)
    expect(await compute.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).toBe('1')

    const restartedAt = Date.now()
    await sks.start(sk2)
    await Promise.race([insert, sleep(10_000)])
    expect(done.at).not.toBe(0)
    const waitedMs = done.at - restartedAt
    console.log(`the INSERT finished ${waitedMs} ms after sk2 was started again`)
    expect(waitedMs).toBeLessThan(5000)
    expect(await compute.sql("SELECT count(*) FROM t WHERE pad = 'one of three'")).toBe('1')
    await sks.start(sk3)
    await connectedAndCaughtUp()
  })
})
