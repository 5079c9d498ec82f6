/**
 * A WAL receiver whose compute does not have the WAL the timeline needs next: real PostgreSQL 15 computes
 * started from the pageserver, one whose pg_wal begins after the timeline's end (as a compute rebuilt
 * after a pageserver lost what it had not flushed) and one whose WAL ends before it. The receiver stops
 * as `broken` instead of reconnecting for ever, and tries again only when its source is set again.
 */
import { readFile, rm } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { generateId } from '../../src/lib/ids.js'
import type { TimelineInfo } from '../../src/pageserver/api-types.js'
import type { Pageserver } from '../../src/pageserver/pageserver.js'
import { WAL_RECEIVER_APPLICATION_NAME } from '../../src/pageserver/wal-receiver.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { jsonRequest } from '../harness/http.js'
import { computeFromPageService } from '../harness/page-service.js'
import { startTestPageserver } from '../harness/pageserver.js'
import { makeTempDir, type PgCluster } from '../harness/postgres.js'
import { waitUntil } from '../harness/wait.js'

let dir: string
let ps: Pageserver
let api: string
let pgPort: number
const logged: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
const computes: PgCluster[] = []

const http = (method: string, path: string, body?: unknown) => jsonRequest(api, method, path, body)
const detail = async (tenantId: string, timelineId: string): Promise<TimelineInfo> =>
  (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
const setSource = async (tenantId: string, timelineId: string, connstr: string | null) => {
  const r = await http('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
    wal_source_connstr: connstr,
  })
  expect(r.status).toBe(200)
}

/** A compute that logs every connection, so that the receiver's attempts can be counted. */
async function compute(tenantId: string, timelineId: string, lsn?: string): Promise<PgCluster> {
  const pg = await computeFromPageService(pgPort, tenantId, timelineId, {
    lsn,
    name: 'ps-broken',
    settings: { log_connections: 'on' },
  })
  computes.push(pg)
  return pg
}

async function replicationConnections(pg: PgCluster): Promise<number> {
  const log = await readFile(pg.logFile, 'utf8')
  return log
    .split('\n')
    .filter((l) => /replication connection authorized: .*application_name=pageserver/.test(l)).length
}

beforeAll(async () => {
  dir = await makeTempDir('zenith-ps-broken-')
  ;({ ps, api, pgPort } = await startTestPageserver(dir, (level, msg, fields) =>
    logged.push({ level, msg, fields }),
  ))
})

afterAll(async () => {
  for (const pg of computes) await pg.destroy()
  await ps?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('a WAL receiver whose compute lacks the WAL', () => {
  let tenantId: string
  let main: string
  let importLsn: string

  const branchAtImport = async () => {
    const id = generateId()
    const made = await http('POST', `/v1/tenant/${tenantId}/timeline`, {
      new_timeline_id: id,
      ancestor_timeline_id: main,
      ancestor_start_lsn: importLsn,
    })
    expect(made.status).toBe(201)
    return id
  }

  /** Streams `timelineId` from `pg`; the receiver must end up broken, after one attempt only. */
  const expectBroken = async (timelineId: string, pg: PgCluster, reason: RegExp) => {
    const before = await replicationConnections(pg)
    await setSource(tenantId, timelineId, pg.connectionString())
    await waitUntil(
      'the receiver is broken',
      async () => (await detail(tenantId, timelineId)).walreceiver_status === 'broken',
    )
    const broken = await detail(tenantId, timelineId)
    expect(broken.wal_source_connstr).toBe(pg.connectionString())
    expect(broken.walreceiver_error).toContain(
      `${pg.connectionString()} does not have the WAL from ${broken.last_record_lsn} on`,
    )
    expect(broken.walreceiver_error).toMatch(reason)
    // A reconnect loop would have made several attempts within this time.
    await new Promise((r) => setTimeout(r, 1500))
    expect(await replicationConnections(pg)).toBe(before + 1)
    expect((await detail(tenantId, timelineId)).walreceiver_status).toBe('broken')
    expect(logged.filter((l) => l.level === 'error').at(-1)?.fields).toMatchObject({
      timelineId,
      source: pg.connectionString(),
    })
  }

  beforeAll(async () => {
    tenantId = (await http('POST', '/v1/tenant', {})).json
    main = generateId()
    const created = await http('POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: main })
    expect(created.status).toBe(201)
    importLsn = created.json.last_record_lsn
    // main moves on a little (within the import's WAL segment), streamed from a compute that is then
    // gone with its WAL.
    const first = await computeFromPageService(pgPort, tenantId, main, {
      name: 'ps-first',
      settings: {
        synchronous_standby_names: WAL_RECEIVER_APPLICATION_NAME,
        synchronous_commit: 'remote_write',
      },
    })
    try {
      await setSource(tenantId, main, first.connectionString())
      await first.sql("CREATE TABLE t AS SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 200) i")
      await first.stop()
      await setSource(tenantId, main, null)
    } finally {
      await first.destroy()
    }
    expect(parseLsn((await detail(tenantId, main)).last_record_lsn)).toBeGreaterThan(parseLsn(importLsn))
  })

  it('stops as broken when the WAL at its start is not there, and tries again when the source is set again', async () => {
    // A compute from main's end: its pg_wal is zeros before it, where a branch at the import goes on —
    // the fault soak's "invalid record length … got 0".
    const late = await compute(tenantId, main)
    const branch = await branchAtImport()
    await expectBroken(branch, late, /: invalid record length at \S+: wanted 24, got 0$/)
    expect(parseLsn((await detail(tenantId, branch)).last_record_lsn)).toBe(parseLsn(importLsn))

    // The same source again: one new attempt, which fails the same way.
    await expectBroken(branch, late, /invalid record length/)

    // A source that is merely down is retried, not broken.
    await setSource(tenantId, branch, `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`)
    await waitUntil(
      'the receiver backs off',
      async () => (await detail(tenantId, branch)).walreceiver_status === 'backoff',
    )
    await new Promise((r) => setTimeout(r, 500))
    const down = await detail(tenantId, branch)
    expect(down.walreceiver_status).not.toBe('broken')
    expect(down.walreceiver_error).toMatch(/could not connect/)
    await setSource(tenantId, branch, null)

    // The compute does have what main needs: main streams from it, into the next WAL segment.
    await setSource(tenantId, main, late.connectionString())
    await waitUntil(
      'main streams',
      async () => (await detail(tenantId, main)).walreceiver_status === 'streaming',
    )
    await late.sql('SELECT pg_switch_wal()')
    await late.sql("INSERT INTO t SELECT i, 'y' FROM generate_series(1, 10) i")
    const [{ lsn }] = await late.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn() AS lsn')
    await waitUntil(
      'main has it',
      async () => parseLsn((await detail(tenantId, main)).last_record_lsn) >= parseLsn(lsn),
    )
    await setSource(tenantId, main, null)
  })

  it('stops as broken when the segment it needs is gone from the compute', async () => {
    const later = await compute(tenantId, main)
    await expectBroken(await branchAtImport(), later, /requested WAL segment \S+ has already been removed$/)
  })

  it('stops as broken when the compute refuses the start position, its WAL ending before it', async () => {
    // A writable compute from main as it was at the import: main needs WAL from beyond its end.
    const early = await compute(tenantId, main, importLsn)
    await expectBroken(main, early, /requested starting point \S+ is ahead of the WAL flush position/)
    await setSource(tenantId, main, null)
    expect((await detail(tenantId, main)).walreceiver_status).toBe('inactive')
  })
})
