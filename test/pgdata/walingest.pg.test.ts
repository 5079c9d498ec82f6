/**
 * Stock Postgres on zenith, end to end: a compute started from a basebackup runs a varied workload; its
 * WAL is ingested into the timeline; a basebackup at the last LSN (and one at an LSN mid-workload) starts
 * another Postgres whose pg_dumpall equals the first's at that moment, and amcheck finds nothing wrong.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { postgresImageKeyFilter } from '../../src/pgdata/datadir-keyspace.js'
import { importDatadir } from '../../src/pgdata/import.js'
import { IngestError } from '../../src/pgdata/walingest.js'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { basebackupToFile, ingestWalDir, startPostgresFromTar } from '../harness/compute.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'
import { runVariedWorkload } from '../harness/workload.js'

const work = mkdtempSync(path.join(os.tmpdir(), 'zenith-ingest-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const COMPUTE_SETTINGS = {
  wal_consistency_checking: 'all',
  wal_keep_size: '2GB',
  max_prepared_transactions: 5,
  autovacuum: 'off',
}

let tarSeq = 0
/** A compute started from a basebackup of `tl` at `lsn`. */
async function computeFrom(tl: Timeline, lsn: Lsn | undefined, settings: Record<string, string | number>) {
  const tarFile = path.join(work, `base-${++tarSeq}.tar`)
  const { checkpointLsn } = await basebackupToFile(tl, tarFile, lsn)
  const pg = await startPostgresFromTar(tarFile, { name: `compute-${tarSeq}`, settings })
  return { pg, checkpointLsn }
}

const ingestWal = (tl: Timeline, pg: PgCluster, from: Lsn) => ingestWalDir(tl, pg.walDir, { start: from })

const SETVAL = /^SELECT pg_catalog\.setval\('([^']+)', (\d+), (true|false)\);$/gm

/**
 * Dumps must be equal except for sequences: Postgres logs a sequence 32 values ahead of what it hands out,
 * so a server started from the WAL (as after crash recovery) may have moved it on by up to 32.
 */
function expectSameDump(got: string, want: string): void {
  const values = (d: string) => new Map([...d.matchAll(SETVAL)].map((m) => [m[1], Number(m[2])]))
  const gotSeq = values(got)
  for (const [name, v] of values(want)) {
    expect(gotSeq.get(name), name).toBeGreaterThanOrEqual(v)
    expect(gotSeq.get(name)! - v, name).toBeLessThanOrEqual(32)
  }
  const strip = (d: string) => d.replace(SETVAL, "SELECT pg_catalog.setval('$1', N, $3);")
  expect(strip(got)).toBe(strip(want))
}

const dumpall = (pg: PgCluster) =>
  pg
    .run('pg_dumpall', ['--no-role-passwords'])
    .then((r) => r.stdout.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict'))

describe('WAL ingest', () => {
  it('round-trips a varied workload through the timeline, at the tip, at an earlier LSN, continued and branched', async () => {
    const source = await startPostgres({ name: 'ingest-source' })
    await source.stop()
    const repo = await Repository.open(path.join(work, 'repo'), {
      background: false,
      imageKeyFilter: postgresImageKeyFilter,
    })
    const clusters: PgCluster[] = [source]
    try {
      const tenant = repo.createTenant()
      const { timeline: tl } = importDatadir(tenant, source.datadir)
      const first = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(first.pg)
      await first.pg.sql([
        'CREATE EXTENSION amcheck',
        'CREATE TABLE early AS SELECT g FROM generate_series(1, 1000) g',
      ])
      const [{ midLsn }] = await first.pg.query<{ midLsn: string }>(
        'SELECT pg_current_wal_insert_lsn() AS "midLsn"',
      )
      const midDump = await dumpall(first.pg)
      await runVariedWorkload(first.pg)
      const finalDump = await dumpall(first.pg)
      await first.pg.stop()

      const records = await ingestWal(tl, first.pg, first.checkpointLsn)
      expect(records).toBeGreaterThan(1000)
      // Layers, compaction and image layers under the data: the second compute reads through them.
      await tl.checkpoint()
      await tenant.compact(tl, true)
      const images = tl.layerInfo().filter((l) => l.kind === 'image')
      expect(images.length).toBeGreaterThan(0)
      const exists = postgresImageKeyFilter(tl, tl.diskConsistentLsn)
      for (const l of tl.layers.layers.filter((x) => x.isImage)) {
        for (const k of l.reader().keys()) expect(exists(k)).toBe(true)
      }
      // Dropped tables and databases, and truncated relations, left keys that images leave out.
      let gone = 0
      for (const l of tl.layers.layers.filter((x) => !x.isImage)) {
        for (const k of l.reader().keys()) if (!exists(k)) gone++
      }
      expect(gone).toBeGreaterThan(0)

      const second = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(second.pg)
      expectSameDump(await dumpall(second.pg), finalDump)
      for (const db of ['postgres', 'db_file_copy']) {
        await second.pg.sql('CREATE EXTENSION IF NOT EXISTS amcheck', { db })
        const corrupt = await second.pg.sql(
          `SELECT count(*) FROM pg_class c, LATERAL verify_heapam(c.oid)
           WHERE c.relkind = 'r' AND c.relpersistence = 'p'`,
          { db },
        )
        expect(corrupt, db).toBe('0')
        // bt_index_check raises an error for a corrupt index, failing the test.
        await second.pg.sql(
          `SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence = 'p'`,
          { db },
        )
      }

      const past = await computeFrom(tl, parseLsn(midLsn), { ...COMPUTE_SETTINGS })
      clusters.push(past.pg)
      expectSameDump(await dumpall(past.pg), midDump)
      await past.pg.stop()

      // The second compute goes on writing; its WAL continues the same timeline.
      await second.pg.sql([
        'CREATE TABLE later AS SELECT g, g * 2 AS h FROM generate_series(1, 5000) g',
        'DELETE FROM early',
      ])
      const secondDump = await dumpall(second.pg)
      await second.pg.stop()
      await ingestWal(tl, second.pg, second.checkpointLsn)
      const third = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(third.pg)
      expectSameDump(await dumpall(third.pg), secondDump)
      await third.pg.stop()

      // A branch from the mid-workload LSN diverges; its parent does not change.
      const parentTip = tl.lastRecordLsn
      const branch = tenant.branch(tl.timelineId, { lsn: parseLsn(midLsn) })
      const onBranch = await computeFrom(branch, undefined, COMPUTE_SETTINGS)
      clusters.push(onBranch.pg)
      await onBranch.pg.sql([
        'CREATE TABLE only_on_branch (x text)',
        "INSERT INTO only_on_branch VALUES ('diverged')",
      ])
      await onBranch.pg.stop()
      await ingestWal(branch, onBranch.pg, onBranch.checkpointLsn)
      const branchCompute = await computeFrom(branch, undefined, COMPUTE_SETTINGS)
      clusters.push(branchCompute.pg)
      expect(await branchCompute.pg.sql('SELECT x FROM only_on_branch')).toBe('diverged')
      expect(await branchCompute.pg.sql('SELECT count(*) FROM early')).toBe('1000')
      expect(tl.lastRecordLsn).toBe(parentTip)
      const parentAgain = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(parentAgain.pg)
      expectSameDump(await dumpall(parentAgain.pg), secondDump)
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
    }
  }, 300_000)

  it('carries tablespaces: their relations and databases come back, in place, and empty ones too', async () => {
    const source = await startPostgres({ name: 'ingest-tblspc' })
    await source.stop()
    const repo = await Repository.open(path.join(work, 'repo-tblspc'), { background: false })
    const clusters: PgCluster[] = [source]
    try {
      const { timeline: tl } = importDatadir(repo.createTenant(), source.datadir)
      const c = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(c.pg)
      const location = path.join(c.pg.baseDir, 'ts')
      await c.pg.run('/bin/mkdir', ['-p', location])
      await c.pg.sql(`CREATE TABLESPACE ts LOCATION '${location}'`)
      await c.pg.sql(
        'CREATE TABLE in_ts TABLESPACE ts AS SELECT g, md5(g::text) AS m FROM generate_series(1, 3000) g',
      )
      await c.pg.sql('CREATE DATABASE db_in_ts TABLESPACE ts')
      await c.pg.sql('CREATE TABLE t AS SELECT generate_series(1, 100) AS x', { db: 'db_in_ts' })
      // A tablespace with nothing in it yet, and one dropped again.
      for (const name of ['ts_empty', 'ts_gone']) {
        await c.pg.run('/bin/mkdir', ['-p', path.join(c.pg.baseDir, name)])
        await c.pg.sql(`CREATE TABLESPACE ${name} LOCATION '${path.join(c.pg.baseDir, name)}'`)
      }
      await c.pg.sql('DROP TABLESPACE ts_gone')
      await c.pg.stop()
      await ingestWal(tl, c.pg, c.checkpointLsn)
      const again = await computeFrom(tl, undefined, COMPUTE_SETTINGS)
      clusters.push(again.pg)
      expect(await again.pg.sql('SELECT count(*), sum(g) FROM in_ts')).toBe('3000|4501500')
      expect(await again.pg.sql('SELECT count(*) FROM t', { db: 'db_in_ts' })).toBe('100')
      await again.pg.sql("INSERT INTO in_ts VALUES (0, 'still writable')")
      await again.pg.sql('CREATE TABLE in_empty TABLESPACE ts_empty AS SELECT 1 AS x')
      expect(await again.pg.sql('SELECT spcname FROM pg_tablespace ORDER BY 1')).toBe(
        'pg_default\npg_global\nts\nts_empty',
      )
      expect(readdirSync(path.join(again.pg.datadir, 'pg_tblspc')).length).toBe(2)
      // Importing a datadir follows its pg_tblspc links.
      const imported = importDatadir(repo.createTenant(), c.pg.datadir)
      const fromImport = await computeFrom(imported.timeline, undefined, COMPUTE_SETTINGS)
      clusters.push(fromImport.pg)
      expect(await fromImport.pg.sql('SELECT count(*) FROM t', { db: 'db_in_ts' })).toBe('100')
      expect(await fromImport.pg.sql('SELECT count(*) FROM in_ts')).toBe('3000')
      await fromImport.pg.sql('CREATE TABLE in_empty_too TABLESPACE ts_empty AS SELECT 1 AS x')
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
    }
  })

  it('refuses WAL written without wal_consistency_checking, naming the setting', async () => {
    const source = await startPostgres({ name: 'ingest-plain' })
    await source.stop()
    const repo = await Repository.open(path.join(work, 'repo-plain'), { background: false })
    const clusters: PgCluster[] = [source]
    try {
      const { timeline: tl } = importDatadir(repo.createTenant(), source.datadir)
      const c = await computeFrom(tl, undefined, { wal_consistency_checking: '' })
      clusters.push(c.pg)
      await c.pg.sql(['CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g', 'UPDATE t SET g = g + 1'])
      await c.pg.stop()
      await expect(ingestWal(tl, c.pg, c.checkpointLsn)).rejects.toThrow(IngestError)
      await expect(ingestWal(tl, c.pg, c.checkpointLsn)).rejects.toThrow(/wal_consistency_checking = all/)
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
    }
  })
})
