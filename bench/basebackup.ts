/**
 * Basebackup speed and compute start time on a timeline holding a pgbench database (scale 15), and the
 * same through the CLI's code on a local cluster (compute-start.ts).
 *
 * Figures:
 *   basebackup_mb_s   tar bytes / seconds of `basebackup()` into a writer that drops the chunks; best of 3
 *   compute_start_s   basebackup request → tar file → `tar -xf` → Postgres accepting connections; median of 3
 *   database_bytes    pg_database_size('postgres') of the imported datadir
 *   tar_bytes         size of the basebackup archive
 *   wire_mb_s(_empty) fullbackup through the page service into a datadir by the CLI's code (pgbench scale 10
 *                     database; the empty one); wire_ratio = wire_mb_s / basebackup_mb_s
 *   pg_start_s(_empty) startEndpointSteps of a new endpoint, pgbench scale 10 database (the empty one)
 *   pageserver_cpu_s_per_fullbackup  the pageserver's CPU seconds for one of those fullbackups
 * The data sets are built in the run, in temp dirs removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Repository } from '../src/engine/repository.js'
import { basebackup } from '../src/pgdata/basebackup.js'
import { importDatadir } from '../src/pgdata/import.js'
import { TarWriter } from '../src/postgres/tar.js'
import { basebackupToFile, startPostgresFromTar } from '../test/harness/compute.js'
import { type PgCluster, startPostgres } from '../test/harness/postgres.js'
import { computeStartBench } from './compute-start.js'

const RUNS = 3

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

async function inProcessBench(): Promise<Record<string, number | string>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-basebackup-'))
  const repoDir = path.join(work, 'repo')
  const clusters: PgCluster[] = []
  let repo: Repository | undefined
  try {
    log('building a pgbench scale 15 database and importing it ...')
    const source = await startPostgres({ name: 'bench-bb-source' })
    clusters.push(source)
    await source.run('pgbench', ['-i', '-q', '-s', '15', 'postgres'])
    const [{ size }] = await source.query<{ size: string }>("SELECT pg_database_size('postgres') AS size")
    const databaseBytes = Number(size)
    await source.stop()
    repo = await Repository.open(repoDir, { background: false })
    const tenant = repo.createTenant()
    const { timeline } = importDatadir(tenant, source.datadir)
    await source.destroy()
    // Reopened so that the pages come from layer files through the page cache, as after a restart.
    await repo.close({ flush: true })
    repo = await Repository.open(repoDir, { background: false })
    const tl = repo.tenant(tenant.tenantId).timeline(timeline.timelineId)

    const speeds: number[] = []
    let tarBytes = 0
    for (let run = 0; run < RUNS; run++) {
      const tar = new TarWriter(() => {})
      const t = performance.now()
      await basebackup(tl, tar)
      const secs = (performance.now() - t) / 1000
      tarBytes = tar.bytesWritten
      speeds.push(tarBytes / 1e6 / secs)
      log(`basebackup ${run + 1}: ${(tarBytes / 1e6).toFixed(0)} MB in ${secs.toFixed(2)} s`)
    }

    const starts: number[] = []
    for (let run = 0; run < RUNS; run++) {
      const tarFile = path.join(work, 'base.tar')
      const t = performance.now()
      await basebackupToFile(tl, tarFile)
      const pg = await startPostgresFromTar(tarFile, { name: 'bench-bb-compute' })
      starts.push((performance.now() - t) / 1000)
      await pg.destroy()
      await rm(tarFile)
      log(`compute start ${run + 1}: ${starts[run].toFixed(2)} s`)
    }
    starts.sort((a, b) => a - b)

    return {
      database_bytes: databaseBytes,
      tar_bytes: tarBytes,
      basebackup_mb_s: Math.round(Math.max(...speeds)),
      compute_start_s: Number(starts[Math.floor(RUNS / 2)].toFixed(2)),
    }
  } finally {
    await repo?.close({ flush: false })
    for (const c of clusters) await c.destroy()
    await rm(work, { recursive: true, force: true })
  }
}

/** The in-process figures, then the CLI's: the first is the baseline the second is measured against. */
export async function basebackupBench(): Promise<Record<string, number | string>> {
  const inProcess = await inProcessBench()
  const cli = await computeStartBench()
  const baseline = Number(inProcess.basebackup_mb_s)
  return {
    ...inProcess,
    wire_mb_s: Math.round(cli.wireMbS.pgbench),
    wire_mb_s_empty: Math.round(cli.wireMbS.empty),
    wire_ratio: Number((cli.wireMbS.pgbench / baseline).toFixed(2)),
    wire_bytes: cli.pgbenchBytes,
    pageserver_cpu_s_per_fullbackup: Number(cli.pageserverCpuS.toFixed(2)),
    pg_start_s: Number(cli.pgStartS.pgbench.toFixed(2)),
    pg_start_s_empty: Number(cli.pgStartS.empty.toFixed(2)),
  }
}
