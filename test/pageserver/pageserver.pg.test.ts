/**
 * The pageserver as a process would run it, in this test process: HTTP API, page service and a WAL
 * receiver streaming from a real PostgreSQL 15 compute started from its fullbackup.
 */
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { generateId } from '../../src/lib/ids.js'
import type { TimelineInfo } from '../../src/pageserver/api-types.js'
import { DEFAULT_PAGESERVER_CONFIG } from '../../src/pageserver/config.js'
import { Pageserver } from '../../src/pageserver/pageserver.js'
import {
  decodeResponse,
  encodeRequest,
  LATEST_LSN,
  type PagestreamRequest,
  type PagestreamRequestBody,
} from '../../src/pageserver/pagestream.js'
import { WAL_RECEIVER_APPLICATION_NAME, WAL_SOURCES_FILE } from '../../src/pageserver/wal-receiver.js'
import { formatLsn, type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { readTar } from '../../src/postgres/tar.js'
import { walQuietUntil } from '../../src/postgres/wal-page.js'
import { PgClient } from '../../src/protocol/client.js'
import { jsonRequest } from '../harness/http.js'
import { computeFromPageService, showTenantConfig } from '../harness/page-service.js'
import { startTestPageserver } from '../harness/pageserver.js'
import { makeTempDir, type PgCluster } from '../harness/postgres.js'
import { sleep, waitFor } from '../harness/wait.js'

let dir: string
let ps: Pageserver
let api: string
let pgPort: number
const logged: { level: string; msg: string; fields?: Record<string, unknown> }[] = []

const http = (method: string, path: string, body?: unknown) => jsonRequest(api, method, path, body)

const pageClient = () => PgClient.connect({ host: '127.0.0.1', port: pgPort, user: 'postgres' })

async function flushLsn(pg: PgCluster): Promise<Lsn> {
  const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn() AS lsn')
  return parseLsn(lsn)
}

function computeFrom(tenantId: string, timelineId: string, lsn?: string): Promise<PgCluster> {
  return computeFromPageService(pgPort, tenantId, timelineId, {
    lsn,
    settings: {
      synchronous_standby_names: WAL_RECEIVER_APPLICATION_NAME,
      synchronous_commit: 'remote_write',
    },
  })
}

beforeAll(async () => {
  dir = await makeTempDir('zenith-ps-')
  ;({ ps, api, pgPort } = await startTestPageserver(
    dir,
    (level, msg, fields) => logged.push({ level, msg, fields }),
    { waitLsnTimeoutMs: 2000 },
  ))
})

afterAll(async () => {
  await ps?.stop()
  await rm(dir, { recursive: true, force: true })
  // Requests that fail are answered and logged as warnings at most: an error entry is a server bug.
  expect(logged.filter((l) => l.level === 'error')).toEqual([])
})

describe('pageserver', () => {
  // One compute streams to one timeline; the cases below run in order against it, each picking up where
  // the previous one left the timeline.
  describe('with a compute streaming its WAL', () => {
    let tenantId: string
    let timelineId: string
    let pg: PgCluster
    let commitLsn: Lsn
    let detail: TimelineInfo
    let afterRestart: Lsn
    /** Before the receiver was set: no lag in seconds can be older. */
    let receiverSetAt: number

    beforeAll(async () => {
      const created = await http('POST', '/v1/tenant', { gc_horizon: 1048576 })
      expect(created.status).toBe(201)
      tenantId = created.json
      timelineId = generateId()
      const tl = await http('POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: timelineId })
      expect(tl.status).toBe(201)
      expect(tl.json.timeline_id).toBe(timelineId)
      expect(tl.json.current_logical_size).toBeGreaterThan(1_000_000)
      // No WAL source yet: nothing to measure lag against.
      expect([tl.json.wal_source_end_lsn, tl.json.lag_seconds]).toEqual([null, null])
      pg = await computeFrom(tenantId, timelineId)
      receiverSetAt = Date.now()
      const rx = await http('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
        wal_source_connstr: pg.connectionString(),
      })
      expect(rx.status).toBe(200)
    })
    afterAll(() => pg?.destroy())

    it('ingests as the synchronous standby: a commit returns once the pageserver has its WAL', async () => {
      await pg.sql('CREATE EXTENSION pageinspect')
      await pg.sql("CREATE TABLE t AS SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 20000) i")
      commitLsn = await flushLsn(pg)
      detail = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
      expect(parseLsn(detail.last_record_lsn)).toBeGreaterThanOrEqual(commitLsn)
      expect(detail.walreceiver_status).toBe('streaming')
      expect(detail.wal_source_connstr).toBe(pg.connectionString())
      expect(parseLsn(detail.last_received_msg_lsn ?? '0/0')).toBeGreaterThanOrEqual(commitLsn)
      const replication = await pg.sql(
        `SELECT sync_state, write_lsn >= '${detail.last_record_lsn}' FROM pg_stat_replication WHERE application_name = 'pageserver'`,
      )
      expect(replication).toBe('sync|t')
    })

    it("branches at once where no record can end yet (an idle compute's insert LSN)", async () => {
      const quiet = formatLsn(walQuietUntil(parseLsn(detail.last_record_lsn)))
      const atQuiet = await http('POST', `/v1/tenant/${tenantId}/timeline`, {
        new_timeline_id: generateId(),
        ancestor_timeline_id: timelineId,
        ancestor_start_lsn: quiet,
      })
      expect(atQuiet.status).toBe(201)
      expect([detail.last_record_lsn, quiet]).toContain(atQuiet.json.ancestor_lsn)
    })

    it('answers pagestream requests as the compute sees its relation', async () => {
      const [{ relNode, dbNode, blocks }] = await pg.query<{
        relNode: number
        dbNode: number
        blocks: number
      }>(
        `SELECT pg_relation_filenode('t') AS "relNode", (pg_relation_size('t') / 8192)::int AS blocks,
           (SELECT oid FROM pg_database WHERE datname = 'postgres') AS "dbNode"`,
      )
      const rel = { spcNode: 1663, dbNode, relNode, forkNum: 0 }
      const c = await pageClient()
      try {
        const stream = await c.copyBoth(`pagestream_v3 ${tenantId} ${timelineId}`)
        const it = stream[Symbol.asyncIterator]()
        const ask = async (body: PagestreamRequestBody) => {
          const req = {
            ...body,
            reqid: 7n,
            requestLsn: LATEST_LSN,
            notModifiedSince: commitLsn,
          } as PagestreamRequest
          stream.send(encodeRequest(req, 3))
          const { value } = await it.next()
          return decodeResponse(value as Buffer, req, 3)
        }
        expect(await ask({ kind: 'exists', rel })).toEqual({ kind: 'exists', exists: true })
        expect(await ask({ kind: 'exists', rel: { ...rel, relNode: 999999 } })).toEqual({
          kind: 'exists',
          exists: false,
        })
        expect(await ask({ kind: 'nblocks', rel })).toEqual({ kind: 'nblocks', nblocks: blocks })
        const page = await ask({ kind: 'getpage', rel, blkno: 0 })
        expect(page.kind).toBe('getpage')
        const p = (page as { page: Buffer }).page
        const lineItems = (p.readUInt16LE(12) - 24) / 4
        const [{ items }] = await pg.query<{ items: number }>(
          "SELECT count(*)::int AS items FROM heap_page_items(get_raw_page('t', 0))",
        )
        expect(lineItems).toBe(items)
        const size = await ask({ kind: 'dbsize', dbNode })
        expect(size.kind === 'dbsize' && size.bytes).toBeGreaterThan(blocks * 8192)
        const missing = await ask({ kind: 'nblocks', rel: { ...rel, relNode: 999999 } })
        expect(missing.kind).toBe('error')
        // pg_xact segment 0 holds the status of every transaction so far.
        const clog = await ask({ kind: 'slru', slruKind: 0, segno: 0 })
        expect(clog.kind === 'slru' && clog.nblocks).toBeGreaterThan(0)
        stream.end()
      } finally {
        await c.close()
      }
    })

    it('shows the tenant config through the page service', async () => {
      const cfg = await showTenantConfig(pgPort, tenantId)
      expect(cfg.gc_horizon).toBe('1048576')
    })

    it('says why while the compute is down, and goes on from last_record_lsn when it is back', async () => {
      await pg.stop()
      // While the compute is down the receiver retries, and says why.
      let down = detail
      for (let i = 0; i < 100 && down.walreceiver_status !== 'backoff'; i++) {
        await new Promise((r) => setTimeout(r, 50))
        down = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
      }
      expect(down.walreceiver_status).toBe('backoff')
      expect(down.walreceiver_error).toMatch(/ended replication|could not connect/)
      await pg.start()
      await pg.sql("INSERT INTO t SELECT i, 'y' FROM generate_series(1, 100) i")
      afterRestart = await flushLsn(pg)
      const again = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
      expect(parseLsn(again.last_record_lsn)).toBeGreaterThanOrEqual(afterRestart)
    })

    it('counts ingested bytes, getpage requests and layers in /metrics', async () => {
      const metrics = await (await fetch(`${api}/metrics`)).text()
      expect(Number(/^pageserver_wal_ingest_bytes_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(
        1_000_000,
      )
      expect(Number(/^pageserver_getpage_requests_total (\d+)$/m.exec(metrics)?.[1])).toBe(1)
      expect(metrics).toMatch(/^pageserver_getpage_seconds_count 1$/m)
      expect(metrics).toMatch(/^pageserver_layers\{kind="open"\} 1$/m)
      expect(Number(/^process_virtual_memory_bytes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0)
      expect(Number(/^process_threads (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(1)
    })

    it("measures lag in seconds from the compute's flush LSN: none once ingested, and disk_consistent_lsn falling behind by the second until a checkpoint", async () => {
      const path = `/v1/tenant/${tenantId}/timeline/${timelineId}`
      // The compute's restart checkpointed the timeline at its shutdown, and it wrote on since: the end
      // it sends has passed disk_consistent_lsn, which stays while the new WAL is in memory only.
      const before = (await http('GET', path)).json as TimelineInfo
      expect(parseLsn(before.disk_consistent_lsn)).toBeLessThan(parseLsn(before.last_record_lsn))
      await sleep(1500)
      const flush = await flushLsn(pg)
      const d = await waitFor('last_record_lsn to be caught up in seconds', async () => {
        const t = (await http('GET', path)).json as TimelineInfo
        return t.lag_seconds?.last_record === 0 ? t : undefined
      })
      const ageS = (Date.now() - receiverSetAt) / 1000
      expect(parseLsn(d.wal_source_end_lsn!)).toBeGreaterThanOrEqual(flush)
      expect(parseLsn(d.wal_source_end_lsn!)).toBeLessThanOrEqual(await flushLsn(pg))
      expect(d.disk_consistent_lsn).toBe(before.disk_consistent_lsn)
      // The compute was past disk_consistent_lsn before the sleep; the clock is no older than the receiver.
      expect(d.lag_seconds!.disk_consistent).toBeGreaterThanOrEqual(1.5)
      expect(d.lag_seconds!.disk_consistent).toBeLessThanOrEqual(ageS)
      expect(d.lag_seconds!.remote_consistent).toBe(d.lag_seconds!.disk_consistent)
      // A checkpoint catches every LSN up: no lag at all.
      await http('PUT', `${path}/checkpoint`)
      const after = (await http('GET', path)).json as TimelineInfo
      expect(after.disk_consistent_lsn).toBe(after.last_record_lsn)
      expect(after.lag_seconds).toEqual({ last_record: 0, disk_consistent: 0, remote_consistent: 0 })
    })

    it('checkpoints, tells the compute its flush LSN, compacts into image layers and runs GC', async () => {
      const cp = await http('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/checkpoint`)
      expect(cp.status).toBe(200)
      expect(parseLsn(cp.json.disk_consistent_lsn)).toBeGreaterThanOrEqual(afterRestart)
      const layers = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}/layer`)).json
      expect(layers.historic_layers.length).toBeGreaterThan(0)
      expect(layers.in_memory_layers).toEqual([])
      // The compute hears of it: flush in its standby status is disk_consistent_lsn.
      let flushed = ''
      for (let i = 0; i < 60 && flushed !== 't'; i++) {
        await new Promise((r) => setTimeout(r, 100))
        flushed = await pg.sql(
          `SELECT flush_lsn >= '${cp.json.disk_consistent_lsn}' FROM pg_stat_replication WHERE application_name = 'pageserver'`,
        )
      }
      expect(flushed).toBe('t')
      const compact = await http(
        'PUT',
        `/v1/tenant/${tenantId}/timeline/${timelineId}/compact?force_image_layer_creation=true`,
      )
      expect(compact.status).toBe(200)
      expect(compact.json.image_layers.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      const afterCompact = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}/layer`)).json
      expect(afterCompact.historic_layers.some((l: { kind: string }) => l.kind === 'Image')).toBe(true)
      const gc = await http('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/do_gc`, { gc_horizon: 0 })
      expect(gc.status).toBe(200)
      expect(gc.json.cutoff).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    })

    it('streams basebackup, and a fullbackup at an older LSN holds the table as it was then', async () => {
      const bc = await pageClient()
      try {
        const names: string[] = []
        for await (const entry of readTar(bc.copyOut(`basebackup ${tenantId} ${timelineId}`)))
          names.push(entry.name)
        expect(names).toContain('global/pg_control')
        expect(names).toContain('PG_VERSION')
      } finally {
        await bc.close()
      }

      const past = await computeFrom(tenantId, timelineId, detail.last_record_lsn)
      try {
        expect(await past.sql('SELECT count(*) FROM t')).toBe('20000')
      } finally {
        await past.destroy()
      }
    })
  })

  it('refuses bad requests with a status and a message', async () => {
    const tenantId: string = (await http('POST', '/v1/tenant', {})).json
    const main = generateId()
    expect((await http('POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: main })).status).toBe(
      201,
    )
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', `/v1/tenant/${tenantId}/timeline`, '{"new_timeline_id": ', 400, /malformed JSON/],
      ['POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: 'xyz' }, 400, /invalid timeline id/],
      ['POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: main }, 409, /already exists/],
      ['GET', `/v1/tenant/${generateId()}/timeline`, undefined, 404, /not found/],
      ['GET', `/v1/tenant/${tenantId}/timeline/${generateId()}`, undefined, 404, /not found/],
      ['PATCH', `/v1/tenant/${tenantId}/config`, { gc_horizon: -1 }, 400, /gc_horizon/],
      ['PATCH', `/v1/tenant/${tenantId}/config`, { no_such_key: 1 }, 400, /no_such_key/],
      [
        'POST',
        `/v1/tenant/${tenantId}/timeline`,
        { new_timeline_id: generateId(), ancestor_timeline_id: main, ancestor_start_lsn: 'zz' },
        400,
        /invalid LSN/,
      ],
      [
        'POST',
        `/v1/tenant/${tenantId}/timeline`,
        { new_timeline_id: generateId(), ancestor_timeline_id: main, ancestor_start_lsn: 'FF/0' },
        408,
        /timed out/,
      ],
      ['GET', '/v1/nothing', undefined, 404, /no such endpoint/],
      [
        'PATCH',
        `/v1/tenant/${tenantId}/config`,
        { gc_period: 3600 },
        400,
        /gc_period: 3600 is not a duration/,
      ],
      [
        'POST',
        `/v1/tenant/${tenantId}/timeline`,
        { new_timeline_id: generateId(), ancestor_start_lsn: '0/10' },
        400,
        /needs ancestor_timeline_id/,
      ],
      [
        'PUT',
        `/v1/tenant/${tenantId}/timeline/${main}/wal_receiver`,
        { wal_source_connstr: 'nohost' },
        400,
        /host and port/,
      ],
    ]
    for (const [method, path, body, status, msg] of cases) {
      const r = await http(method, path, body)
      expect({ path, status: r.status }).toEqual({ path, status })
      expect(r.json.msg).toMatch(msg)
    }
    // PUT replaces the overrides, in Neon's form (tenant in the body) as in ours (tenant in the path).
    expect((await http('PATCH', `/v1/tenant/${tenantId}/config`, { pitr_interval: '1 h' })).status).toBe(200)
    const replaced = await http('PUT', '/v1/tenant/config', { tenant_id: tenantId, gc_horizon: 4096 })
    expect(replaced.status).toBe(200)
    expect(replaced.json.tenant_specific_overrides).toEqual({ gc_horizon: 4096 })
    const mismatch = await http('PUT', `/v1/tenant/${tenantId}/config`, {
      tenant_id: generateId(),
      gc_horizon: 1,
    })
    expect(mismatch.status).toBe(400)
    expect(mismatch.json.msg).toMatch(/differs from/)
    // A tenant refused for its config leaves nothing behind: the same id can be created right after.
    const id = generateId()
    expect((await http('POST', '/v1/tenant', { new_tenant_id: id, gc_horizon: -1 })).status).toBe(400)
    expect((await http('POST', '/v1/tenant', { new_tenant_id: id, gc_period: '1 h' })).status).toBe(201)
    // A branch keeps its parent from being deleted.
    const child = generateId()
    expect(
      (
        await http('POST', `/v1/tenant/${tenantId}/timeline`, {
          new_timeline_id: child,
          ancestor_timeline_id: main,
        })
      ).status,
    ).toBe(201)
    expect((await http('DELETE', `/v1/tenant/${tenantId}/timeline/${main}`)).status).toBe(409)
    expect((await http('DELETE', `/v1/tenant/${tenantId}/timeline/${child}`)).status).toBe(200)
    expect((await http('GET', `/v1/tenant/${tenantId}/timeline/${child}`)).status).toBe(404)
    // A branch point before the ancestor's start is bad input, not a conflict.
    const early = await http('POST', `/v1/tenant/${tenantId}/timeline`, {
      new_timeline_id: generateId(),
      ancestor_timeline_id: main,
      ancestor_start_lsn: '0/10',
    })
    expect(early.status).toBe(400)
    expect(early.json.msg).toMatch(/before the start/)
  })
  it('refuses to start on a damaged wal_sources.json, naming it', async () => {
    const other = await makeTempDir('zenith-ps-damaged-')
    try {
      await writeFile(path.join(other, WAL_SOURCES_FILE), '{"broken": ')
      const config = {
        ...DEFAULT_PAGESERVER_CONFIG,
        listenPgAddr: { host: '127.0.0.1', port: await freePort() },
        listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
      }
      await expect(Pageserver.start(other, { log: () => {}, config })).rejects.toThrow(
        /wal_sources\.json is not valid JSON/,
      )
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })
})
