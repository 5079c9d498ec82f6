/**
 * A zenith compute under pgbench against the same Postgres with no standby, in the same run.
 *
 * Figures:
 *   tps_zenith        pgbench tps (tpcb-like, scale 10, 4 clients, 30 s) on an endpoint of a local cluster:
 *                     wal_consistency_checking = all, the pageserver as synchronous standby (remote_write)
 *   tps_plain         the same pgbench on stock Postgres with the same settings but no standby
 *   tps_ratio         tps_zenith / tps_plain
 *   lag_p99_bytes     p99 over the timed run (not pgbench -i) of how far the pageserver's last_record_lsn is behind the compute's
 *                     flush LSN, sampled every 50 ms; lag_max_bytes the largest sample
 *   wal_mb_s          WAL the compute wrote per second during the run
 * The pageserver runs inside this process, as `zenith start --embedded` runs it.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { initSteps } from '../src/control/cluster.js'
import { connstrOf, startEndpointSteps, stopEndpoint } from '../src/control/endpoints.js'
import { runPageserver } from '../src/control/pageserver-process.js'
import { freePort } from '../src/control/process.js'
import { loadClusterConfig } from '../src/control/repo-config.js'
import { runSteps } from '../src/control/steps.js'
import { runStorageController } from '../src/control/storage-controller-process.js'
import { parseLsn } from '../src/postgres/lsn.js'
import { PgClient } from '../src/protocol/client.js'
import { startPostgres } from '../test/harness/postgres.js'
import {
  CLIENTS,
  COMPUTE_SETTINGS,
  log,
  percentile,
  pgbench,
  pgbenchInit,
  SAMPLE_MS,
  SCALE,
  SECONDS,
} from './pgbench.js'

async function zenithRun(): Promise<{ tps: number; lags: number[]; walBytes: number }> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-cluster-'))
  await chmod(work, 0o755)
  const repoDir = path.join(work, 'repo')
  const [pgPort, httpPort, computeBase] = [await freePort(), await freePort(), await freePort()]
  await runSteps(
    initSteps(repoDir, {
      pageserverPgPort: pgPort,
      pageserverHttpPort: httpPort,
      computePortBase: computeBase,
      // Direct mode: the pageserver is the compute's synchronous standby (bench safekeepers has quorums).
      numSafekeepers: 0,
      storageControllerPort: await freePort(),
    }),
  )
  // The pageserver asks the storage controller for its generations as it starts.
  const controller = await runStorageController(repoDir, { logToStdout: false })
  const running = await runPageserver(repoDir, 1, { logToStdout: false })
  try {
    await runSteps((await startEndpointSteps(repoDir, 'main')).steps)
    const e = loadClusterConfig(repoDir).endpoints.main
    const tl = running.server.timeline(e.tenantId, e.timelineId)
    const connstr = connstrOf(e.port)
    const client = await PgClient.connect({ host: '127.0.0.1', port: e.port, user: 'postgres' })
    const flushLsn = async () =>
      parseLsn((await client.query('SELECT pg_current_wal_flush_lsn()')).rows[0][0]!)
    log(`zenith: pgbench -i -s ${SCALE} ...`)
    await pgbenchInit(connstr)
    const lags: number[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const flush = await flushLsn()
        lags.push(Math.max(0, flush - tl.lastRecordLsn))
        await new Promise((r) => setTimeout(r, SAMPLE_MS))
      }
    })()
    const before = await flushLsn()
    let tps: number
    try {
      log(`zenith: ${SECONDS} s with ${CLIENTS} clients ...`)
      tps = (await pgbench(connstr)).tps
    } finally {
      sampling = false
      await sampler
    }
    const walBytes = (await flushLsn()) - before
    await client.close()
    await stopEndpoint(repoDir, 'main')
    return { tps, lags, walBytes }
  } finally {
    await running.stop()
    await controller.stop()
    await rm(work, { recursive: true, force: true })
  }
}

async function plainRun(): Promise<number> {
  const pg = await startPostgres({
    name: 'bench-cluster-plain',
    // The compute's own settings (templates/postgresql.conf), without the synchronous standby.
    settings: COMPUTE_SETTINGS,
  })
  try {
    log(`plain: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    await pgbenchInit(pg.connectionString())
    return (await pgbench(pg.connectionString())).tps
  } finally {
    await pg.destroy()
  }
}

export async function clusterBench(): Promise<Record<string, number | string>> {
  const z = await zenithRun()
  const plain = await plainRun()
  log(`zenith ${z.tps.toFixed(0)} tps, plain ${plain.toFixed(0)} tps, ${z.lags.length} lag samples`)
  return {
    tps_zenith: Math.round(z.tps),
    tps_plain: Math.round(plain),
    tps_ratio: Number((z.tps / plain).toFixed(3)),
    lag_p99_bytes: percentile(z.lags, 99),
    lag_max_bytes: Math.max(0, ...z.lags),
    lag_samples: z.lags.length,
    wal_mb_s: Number((z.walBytes / 1e6 / SECONDS).toFixed(1)),
  }
}
