/**
 * WAL ingest on real pgbench WAL, written by a compute started from a zenith basebackup with
 * wal_consistency_checking=all, as a safekeeper would hand it to the pageserver.
 *
 * Figures, all from this run on the same WAL:
 *   ingest_wal_mb_s    WAL bytes / seconds to decode, ingest, commit and checkpoint the timeline
 *   decode_only_mb_s   the baseline: the same WAL range read and decoded, records dropped
 *   ingest_vs_decode   ingest_wal_mb_s / decode_only_mb_s
 *   records_per_s      records per second at ingest_wal_mb_s
 *   wal_bytes          checkpointLsn .. end
 * The WAL and the repository as it stood before the WAL are generated once into bench/.data and reused;
 * every measured run ingests into a fresh copy of that repository.
 */
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Repository } from '../src/engine/repository.js'
import { importDatadir } from '../src/pgdata/import.js'
import { formatLsn, parseLsn } from '../src/postgres/lsn.js'
import { openWalDir } from '../src/postgres/wal-dir.js'
import { basebackupToFile, ingestWalDir, startPostgresFromTar } from '../test/harness/compute.js'
import { type PgCluster, startPostgres } from '../test/harness/postgres.js'

// npm runs benchmarks from the package root, from sources or from the compiled build alike.
const DATA = path.resolve('bench', '.data', 'ingest')
const TARGET_BYTES = 300e6
const RUNS = 3
const COMMIT_EVERY = 2000

interface Generated {
  tenantId: string
  timelineId: string
  checkpointLsn: string
  endLsn: string
}

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

async function generate(): Promise<Generated> {
  const metaFile = path.join(DATA, 'meta.json')
  if (existsSync(metaFile)) return JSON.parse(await readFile(metaFile, 'utf8'))
  log(`generating ≥ ${TARGET_BYTES / 1e6} MB of WAL with pgbench on a zenith compute ...`)
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-ingest-'))
  const clusters: PgCluster[] = []
  let repo: Repository | undefined
  try {
    const source = await startPostgres({ name: 'bench-ingest-source' })
    clusters.push(source)
    await source.stop()
    repo = await Repository.open(path.join(work, 'repo'), { background: false })
    const tenant = repo.createTenant()
    const { timeline } = importDatadir(tenant, source.datadir)
    const tarFile = path.join(work, 'base.tar')
    const { checkpointLsn } = await basebackupToFile(timeline, tarFile)
    // Flushed and closed before the WAL exists, so the cached repository stands exactly at checkpointLsn.
    await repo.close({ flush: true })
    repo = undefined

    const pg = await startPostgresFromTar(tarFile, {
      name: 'bench-ingest-compute',
      settings: { wal_consistency_checking: 'all', wal_keep_size: '2GB', max_wal_size: '4GB' },
    })
    clusters.push(pg)
    await pg.run('pgbench', ['-i', '-q', '-s', '10', 'postgres'])
    const start = formatLsn(checkpointLsn)
    // pgbench -i alone may pass the target; the transactions' WAL must be part of the sample anyway.
    for (;;) {
      await pg.run('pgbench', ['-n', '-c', '4', '-j', '2', '-T', '5', 'postgres'])
      const [{ done }] = await pg.query<{ done: string }>(
        'SELECT pg_current_wal_insert_lsn() - $1::pg_lsn AS done',
        [start],
      )
      if (Number(done) >= TARGET_BYTES) break
    }
    const [{ endLsn }] = await pg.query<{ endLsn: string }>('SELECT pg_current_wal_insert_lsn() AS "endLsn"')
    await pg.stop()

    await rm(DATA, { recursive: true, force: true })
    await mkdir(DATA, { recursive: true })
    await cp(path.join(work, 'repo'), path.join(DATA, 'repo'), { recursive: true })
    await cp(pg.walDir, path.join(DATA, 'pg_wal'), { recursive: true })
    const meta = { tenantId: tenant.tenantId, timelineId: timeline.timelineId, checkpointLsn: start, endLsn }
    await writeFile(metaFile, JSON.stringify(meta))
    return meta
  } finally {
    await repo?.close({ flush: false })
    for (const c of clusters) await c.destroy()
    await rm(work, { recursive: true, force: true })
  }
}

async function decodeOnly(walDir: string, start: number, end: number): Promise<number> {
  const t = performance.now()
  const { reader } = await openWalDir(walDir, { start, end })
  for await (const _ of reader.records()) {
  }
  return (performance.now() - t) / 1000
}

async function ingestRun(meta: Generated, walDir: string, start: number, end: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-ingest-run-'))
  let repo: Repository | undefined
  try {
    await cp(path.join(DATA, 'repo'), dir, { recursive: true })
    repo = await Repository.open(dir, { background: false })
    const tl = repo.tenant(meta.tenantId).timeline(meta.timelineId)
    const t = performance.now()
    const records = await ingestWalDir(tl, walDir, { start, end, commitEvery: COMMIT_EVERY })
    await tl.checkpoint()
    return { secs: (performance.now() - t) / 1000, records }
  } finally {
    await repo?.close({ flush: false })
    await rm(dir, { recursive: true, force: true })
  }
}

export async function ingestBench(): Promise<Record<string, number | string>> {
  const meta = await generate()
  const walDir = path.join(DATA, 'pg_wal')
  const start = parseLsn(meta.checkpointLsn)
  const end = parseLsn(meta.endLsn)
  const walBytes = end - start
  log(`WAL ${meta.checkpointLsn} .. ${meta.endLsn}: ${(walBytes / 1e6).toFixed(0)} MB`)

  const decode: number[] = []
  const ingest: number[] = []
  const records: number[] = []
  for (let run = 0; run < RUNS; run++) {
    decode.push(walBytes / 1e6 / (await decodeOnly(walDir, start, end)))
    const r = await ingestRun(meta, walDir, start, end)
    ingest.push(walBytes / 1e6 / r.secs)
    records.push(r.records / r.secs)
    log(
      `run ${run + 1}: decode ${decode[run].toFixed(0)} MB/s, ingest ${ingest[run].toFixed(0)} MB/s, ${r.records} records`,
    )
  }

  const ingestBest = Math.max(...ingest)
  const decodeBest = Math.max(...decode)
  return {
    wal_bytes: walBytes,
    start: meta.checkpointLsn,
    end: meta.endLsn,
    ingest_wal_mb_s: Math.round(ingestBest),
    decode_only_mb_s: Math.round(decodeBest),
    ingest_vs_decode: Number((ingestBest / decodeBest).toFixed(3)),
    records_per_s: Math.round(Math.max(...records)),
  }
}
