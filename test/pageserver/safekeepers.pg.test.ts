/**
 * The pageserver following a timeline's safekeepers instead of its compute: three in-process safekeepers
 * as the compute's quorum (ANY 2), the pageserver streaming from the one with the highest commit_lsn, and
 * switching to another when the one it streams from dies — the time until ingest resumes is measured —
 * and the lag in seconds each hop measures against the end of WAL its source sends.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { formatHostPort } from '../../src/lib/host-port.js'
import { generateId } from '../../src/lib/ids.js'
import type { Pageserver } from '../../src/pageserver/pageserver.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { defaultSafekeeperConfig, type SafekeeperConfig } from '../../src/safekeeper/config.js'
import { Safekeeper } from '../../src/safekeeper/safekeeper.js'
import { jsonRequest } from '../harness/http.js'
import { computeFromPageService } from '../harness/page-service.js'
import { startTestPageserver } from '../harness/pageserver.js'
import type { PgCluster } from '../harness/postgres.js'
import { sleep, waitFor } from '../harness/wait.js'

const N = 3
let dir: string
let ps: Pageserver
let psApi: string
let pgPort: number
const configs: SafekeeperConfig[] = []
const safekeepers: (Safekeeper | undefined)[] = []
let compute: PgCluster
let tenantId: string
let timelineId: string
const logged: { level: string; msg: string }[] = []
const log = (level: string, msg: string) => logged.push({ level, msg })

const startSafekeeper = async (i: number) => {
  safekeepers[i] = await Safekeeper.start(path.join(dir, `sk${i + 1}`), { config: configs[i], log })
}
const skApi = (i: number) => `http://${formatHostPort(configs[i].listenHttpAddr)}`
const psTimeline = async () =>
  (await jsonRequest(psApi, 'GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
const insertLsn = async () => parseLsn(await compute.sql('SELECT pg_current_wal_insert_lsn()'))

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-ps-sk-'))
  for (let i = 0; i < N; i++) {
    configs.push({
      ...defaultSafekeeperConfig(i + 1),
      listenPgAddr: { host: '127.0.0.1', port: await freePort() },
      listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
    })
  }
  for (const c of configs) c.peers = configs.filter((o) => o !== c).map((o) => o.listenHttpAddr)
  for (let i = 0; i < N; i++) await startSafekeeper(i)

  ;({ ps, api: psApi, pgPort } = await startTestPageserver(path.join(dir, 'pageserver'), log))
  tenantId = (await jsonRequest(psApi, 'POST', '/v1/tenant', {})).json
  timelineId = generateId()
  const tl = await jsonRequest(psApi, 'POST', `/v1/tenant/${tenantId}/timeline`, {
    new_timeline_id: timelineId,
  })
  expect(tl.status).toBe(201)
  compute = await computeFromPageService(pgPort, tenantId, timelineId, {
    name: 'sk-quorum',
    settings: {
      synchronous_commit: 'on',
      synchronous_standby_names: 'ANY 2 (sk1, sk2, sk3)',
      wal_keep_size: '1GB',
    },
  })
  const systemId = await compute.sql('SELECT system_identifier FROM pg_control_system()')
  for (let i = 0; i < N; i++) {
    const created = await jsonRequest(skApi(i), 'POST', '/v1/tenant/timeline', {
      tenant_id: tenantId,
      timeline_id: timelineId,
      system_id: systemId,
      start_lsn: tl.json.last_record_lsn,
    })
    expect(created.status).toBe(201)
    const set = await jsonRequest(skApi(i), 'PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/compute`, {
      connstr: compute.connectionString(),
      term: 1,
    })
    expect(set.status).toBe(200)
  }
  const rx = await jsonRequest(psApi, 'PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
    safekeepers: configs.map((c) => ({
      id: c.id,
      pg: formatHostPort(c.listenPgAddr),
      http: formatHostPort(c.listenHttpAddr),
    })),
  })
  expect(rx.status).toBe(200)
})

afterAll(async () => {
  await compute?.destroy()
  await ps?.stop()
  for (const sk of safekeepers) await sk?.stop()
  await rm(dir, { recursive: true, force: true })
  expect(logged.filter((l) => l.level === 'error')).toEqual([])
})

describe('a pageserver with safekeepers', () => {
  it('ingests what the quorum committed, from the safekeeper with the highest commit_lsn', async () => {
    await compute.sql("CREATE TABLE t AS SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 10000) i")
    const committed = await insertLsn()
    const detail = await waitFor('the pageserver to ingest the commit', async () => {
      const d = await psTimeline()
      return parseLsn(d.last_record_lsn) >= committed ? d : undefined
    })
    expect(detail.walreceiver_status).toBe('streaming')
    expect(detail.walreceiver_candidates).toHaveLength(N)
    expect([1, 2, 3]).toContain(detail.walreceiver_safekeeper)
  })

  it("measures lag in seconds: each safekeeper from the compute's flush LSN, the pageserver from its safekeeper's commit_lsn", async () => {
    const flush = parseLsn(await compute.sql('SELECT pg_current_wal_flush_lsn()'))
    const sks = await waitFor('every safekeeper to be caught up in seconds', async () => {
      const all = await Promise.all(
        configs.map(
          async (_, i) =>
            (await jsonRequest(skApi(i), 'GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json,
        ),
      )
      return all.every((t) => t.lag_seconds.flush === 0 && t.lag_seconds.commit === 0) ? all : undefined
    })
    for (const t of sks) {
      // The acceptor heard the compute's end with its WAL: at least what the compute had flushed.
      expect(parseLsn(t.compute_end_lsn)).toBeGreaterThanOrEqual(flush)
      expect(parseLsn(t.flush_lsn)).toBeGreaterThanOrEqual(parseLsn(t.compute_end_lsn))
    }
    // Idle, the pageserver ingests to the commit_lsn its safekeeper sends as the end.
    const ingested = await waitFor('the pageserver to ingest to the end', async () => {
      const d = await psTimeline()
      return d.lag_seconds?.last_record === 0 ? d : undefined
    })
    // It does not flush because the safekeeper's idle keepalives ask for a reply: that would cut a small
    // L0 layer at every pause. The open layer stays until checkpoint_distance, checkpoint_timeout or a
    // checkpoint, and disk_consistent_lsn falls behind by the second meanwhile.
    await sleep(1500)
    const idle = await psTimeline()
    expect(idle.disk_consistent_lsn).toBe(ingested.disk_consistent_lsn)
    expect(parseLsn(idle.disk_consistent_lsn)).toBeLessThan(parseLsn(idle.last_record_lsn))
    expect(idle.lag_seconds.disk_consistent).toBeGreaterThanOrEqual(1.5)
    await jsonRequest(psApi, 'PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/checkpoint?compact=false`)
    const ps = await waitFor('the pageserver to be caught up in seconds', async () => {
      const d = await psTimeline()
      const s = d.lag_seconds
      return s?.last_record === 0 && s.disk_consistent === 0 && d.disk_consistent_lsn === d.last_record_lsn
        ? d
        : undefined
    })
    const source = sks.find((t) => t.safekeeper_id === ps.walreceiver_safekeeper)
    expect(parseLsn(ps.wal_source_end_lsn)).toBeGreaterThanOrEqual(flush)
    expect(parseLsn(ps.wal_source_end_lsn)).toBeLessThanOrEqual(parseLsn(source.commit_lsn))
  })

  it('moves to another safekeeper when the one it streams from dies, and ingest resumes', async () => {
    const d = await psTimeline()
    const victim = d.walreceiver_safekeeper as number
    await safekeepers[victim - 1]!.stop()
    safekeepers[victim - 1] = undefined
    const killedAt = Date.now()
    // Two of three still commit.
    await compute.sql("INSERT INTO t SELECT i, 'after' FROM generate_series(1, 1000) i")
    const committed = await insertLsn()
    const after = await waitFor('ingest to resume from another safekeeper', async () => {
      const x = await psTimeline()
      return parseLsn(x.last_record_lsn) >= committed ? x : undefined
    })
    const failoverS = (Date.now() - killedAt) / 1000
    console.log(`pageserver failover: ingest resumed ${failoverS.toFixed(2)} s after its safekeeper died`)
    expect(after.walreceiver_safekeeper).not.toBe(victim)
    // Liveness is learned by polling, which may come after ingest has already resumed elsewhere.
    await waitFor('the dead safekeeper to be seen as dead', async () => {
      const x = await psTimeline()
      return x.walreceiver_candidates.find((c: { id: number }) => c.id === victim).alive ? undefined : true
    })
    await startSafekeeper(victim - 1)
  })
})
