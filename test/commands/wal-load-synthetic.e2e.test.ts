/**
 * Synthetic WAL through a real cluster (the built CLI's pageserver, no safekeepers): paced to its rate,
 * ingested, and read back — GetPage returns the generated images at the end LSN, and a compute started on
 * the branch from its basebackup sees the generated commits as committed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PageserverClient } from '../../src/control/pageserver-client.js'
import { loadClusterConfig } from '../../src/control/repo-config.js'
import type { WalLoadReport } from '../../src/control/wal-load-report.js'
import { syntheticWalLoad } from '../../src/control/wal-load-synthetic.js'
import { MiB } from '../../src/lib/units.js'
import type { WalContinuation } from '../../src/pageserver/api-types.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { setPageChecksum } from '../../src/postgres/page-checksum.js'
import { SyntheticWal } from '../../src/postgres/synthetic-wal.js'
import { MAIN_FORKNUM } from '../../src/postgres/xlog-record.js'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { getPages } from '../harness/page-service.js'
import { query } from '../harness/sql.js'

const RATE = 4 * MiB

describe('zenith wal load --synthetic', () => {
  let c: Cluster
  let ps: PageserverClient
  let main: WalContinuation
  let tenantId: string
  let report: WalLoadReport

  beforeAll(async () => {
    c = await newCluster('synthetic', {}, ['--num-safekeepers', '0'])
    await c.ok('start')
    ps = new PageserverClient({ host: '127.0.0.1', port: c.http })
    const cfg = loadClusterConfig(c.repo)
    tenantId = cfg.defaultTenantId!
    // The load branches at main's tip; nothing writes to main meanwhile, so this is where it went on.
    main = await ps.walContinuation(tenantId, cfg.branches[tenantId].main)
  }, 120_000)
  afterAll(() => teardown(c), 60_000)

  it('makes WAL at the target rate and the pageserver ingests all of it', async () => {
    const progress: number[] = []
    report = await syntheticWalLoad(
      { repoDir: c.repo, rateBytesPerSec: RATE, durationMs: 5000, recordMix: 'mixed' },
      (p) => progress.push(p.wal_mib_s),
    )
    expect(report.errors, report.first_error ?? '').toBe(0)
    expect(report.branch).toBe('synthetic-1')
    expect(report.achieved_wal_mib_s).toBeGreaterThan(4 * 0.85)
    expect(report.achieved_wal_mib_s).toBeLessThan(4 * 1.15)
    expect(report.target_wal_mib_s).toBe(4)
    expect(report.transactions).toBeGreaterThan(1000)
    expect(report.lag_samples).toBeGreaterThan(20)
    expect(progress.length).toBeGreaterThanOrEqual(4)
    const tl = await ps.timeline(tenantId, report.timeline_id)
    expect(parseLsn(tl.last_record_lsn) - parseLsn(main.last_record_lsn)).toBe(report.wal_bytes)
    // Detached at the end: the branch no longer follows the walsender, which is gone.
    expect(tl.wal_source_connstr).toBeNull()
    const branches = JSON.parse(await c.ok('timeline', 'list', '--json')) as { branch: string }[]
    expect(branches.map((b) => b.branch)).toContain('synthetic-1')
  }, 120_000)

  it('reads back: GetPage at the end LSN returns every block as its last image left it', async () => {
    // The same WAL made again from the same start: the records, and so each block's image, are the same.
    const start = parseLsn(main.last_record_lsn)
    const again = new SyntheticWal({
      startLsn: start,
      prevLsn: 0,
      systemId: BigInt(main.system_id),
      segmentSize: main.wal_segment_size,
      timeline: main.pg_timeline,
      nextXid: main.next_xid,
      nextOid: main.next_oid,
      mix: 'mixed',
    })
    again.generate(start + report.wal_bytes - again.endLsn)
    const end = again.endLsn
    expect(end - start).toBe(report.wal_bytes)
    const blocks = Array.from({ length: Math.min(again.images, again.relationBlocks) }, (_, b) => b)
    expect(blocks.length).toBeGreaterThan(1000)
    const pages = await getPages(
      c.pg,
      tenantId,
      report.timeline_id,
      { ...again.rel, forkNum: MAIN_FORKNUM },
      blocks,
      end,
    )
    for (const b of blocks) {
      const want = again.expectedPage(b)!
      if (main.data_checksums) setPageChecksum(want, b)
      if (!pages[b].equals(want)) throw new Error(`block ${b} differs from its last generated image`)
    }
  }, 60_000)

  it('reads back: a compute starts on the branch and sees the generated commits', async () => {
    await c.ok('pg', 'start', 'synthetic-1')
    const [ep] = (
      JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]
    ).filter((e) => e.name === 'synthetic-1')
    const firstXid = main.next_xid
    const lastXid = firstXid + report.transactions - 1
    const [row] = await query<{ first: string; last: string; next: string }>(
      ep.connstr,
      `SELECT pg_xact_status('${firstXid}'::xid8) AS first, pg_xact_status('${lastXid}'::xid8) AS last,
         txid_current()::text AS next`,
    )
    expect(row.first).toBe('committed')
    expect(row.last).toBe('committed')
    // The checkpoint of the basebackup took nextXid from the generated commits.
    expect(Number(row.next)).toBeGreaterThan(lastXid)
    await c.ok('pg', 'stop', 'synthetic-1')
  }, 120_000)

  it('runs from the CLI: --synthetic --json prints the report as the last line', async () => {
    const out = await c.ok(
      'wal',
      'load',
      '--synthetic',
      '--rate',
      '8MiB/s',
      '--duration',
      '3s',
      '--record-mix',
      'images',
      '--branch',
      'synth-cli',
      '--json',
    )
    const r = JSON.parse(out.trimEnd().split('\n').at(-1)!) as WalLoadReport
    expect(r).toMatchObject({
      mode: 'synthetic',
      branch: 'synth-cli',
      target_wal_mib_s: 8,
      transactions: 0,
      commit_latency_ms_p50: null,
      errors: 0,
    })
    expect(r.achieved_wal_mib_s).toBeGreaterThan(8 * 0.85)
    expect(r.achieved_wal_mib_s).toBeLessThan(8 * 1.15)
    expect(r.ingest_lag_bytes_max).toBeGreaterThanOrEqual(r.ingest_lag_bytes_p99)
    const tl = await ps.timeline(tenantId, r.timeline_id)
    expect(parseLsn(tl.last_record_lsn) - parseLsn(tl.ancestor_lsn!)).toBe(r.wal_bytes)
  }, 60_000)

  it.each([
    [['--synthetic', '--rate', '1MiB/s', '--workload', 'insert'], '--workload belong to a compute'],
    [['--synthetic', '--tps', '10'], '--tps belong to a compute'],
    [['--synthetic', '--rate', '1MiB/s', '--record-mix', 'huge'], 'Expected --record-mix=huge to be one of'],
    [['--tps', '10', '--record-mix', 'images'], '--record-mix needs --synthetic'],
    [['--synthetic', '--rate', '1MiB/s', '--branch', 'main'], 'branch "main" already exists'],
  ])('refuses %j with one line naming what is wrong', async (args, message) => {
    const r = await c.zenith('wal', 'load', ...args)
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr.split('\n')[0]).toContain(message)
    expect(r.stdout).toBe('')
  })
})
