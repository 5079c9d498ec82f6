/**
 * A zenith compute under pgbench, in direct mode and on three safekeepers, against the same Postgres with
 * no standby, in the same run; and what the WAL costs the servers in CPU.
 *
 * Figures (pgbench tpcb-like, scale 10, 4 clients, 30 s, wal_consistency_checking = all everywhere):
 *   tps_zenith                  direct mode: the pageserver is the compute's synchronous standby
 *   tps_sk3                     three safekeepers (ANY 2), the pageserver reading from them
 *   tps_plain                   stock Postgres with the same settings and no standby
 *   tps_ratio, tps_ratio_sk3    tps_zenith / tps_plain, tps_sk3 / tps_plain
 *   wal_bytes_per_tx            WAL the compute wrote per transaction (direct mode)
 *   wal_mb_s                    WAL the compute wrote per second (direct mode)
 *   pageserver_wal_mb_per_cpu_s WAL ingested per CPU-second of the pageserver process (all its threads,
 *                               background work on at its default periods), direct mode; _sk3 on safekeepers
 *   safekeeper_wal_mb_per_cpu_s WAL per CPU-second of one safekeeper, the mean of the three
 *   ingest_lag_p99_bytes        p99 over the timed run of how far the pageserver's last_record_lsn is behind
 *                               the compute's flush LSN, sampled every 50 ms (direct mode); lag_max_bytes the
 *                               largest sample; _sk3 the same on safekeepers
 *   wal_load_target_mib_s       then `zenith wal load --workload pgbench` on the same direct-mode compute for
 *                               20 s at half the WAL rate pgbench reached; wal_load_achieved_mib_s what it
 *                               wrote, wal_load_ingest_lag_p99_bytes the pageserver's lag p99 (goal ≤ 1 MiB)
 * Every server runs in a process of its own (bench/zenith-cluster.ts); CPU comes from their /metrics.
 * MB is 10^6 bytes.
 */
import { runSteps } from '../src/control/steps.js'
import { walLoadSteps } from '../src/control/wal-load.js'
import type { WalLoadReport } from '../src/control/wal-load-report.js'
import { startPostgres } from '../test/harness/postgres.js'
import { CLIENTS, COMPUTE_SETTINGS, log, pgbench, pgbenchInit, SCALE, SECONDS } from './pgbench.js'
import { type TimedRun, timedPgbench, withZenithCluster } from './zenith-cluster.js'

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

const mbPerCpuS = (bytes: number, cpuS: number) => Number((bytes / 1e6 / cpuS).toFixed(1))

function describeRun(what: string, r: TimedRun): void {
  log(
    `${what}: ${r.tps.toFixed(0)} tps, ${(r.walBytes / 1e6).toFixed(0)} MB of WAL, pageserver ${r.pageserverCpuS.toFixed(1)} CPU-s` +
      (r.safekeeperCpuS.length
        ? `, safekeepers ${r.safekeeperCpuS.map((s) => s.toFixed(1)).join('/')} CPU-s`
        : ''),
  )
}

const WAL_LOAD_SECONDS = 20

/** `wal load` at half the WAL rate the timed pgbench reached, on the same compute and tables. */
async function halfRateLoad(repoDir: string, run: TimedRun): Promise<WalLoadReport> {
  const bytesPerSec = Math.round(run.walBytes / SECONDS / 2)
  log(`direct mode: wal load at ${(bytesPerSec / 2 ** 20).toFixed(1)} MiB/s for ${WAL_LOAD_SECONDS} s ...`)
  const { steps, report } = await walLoadSteps({
    repoDir,
    branch: 'main',
    target: { kind: 'wal', bytesPerSec },
    durationMs: WAL_LOAD_SECONDS * 1000,
    clients: CLIENTS,
    workload: 'pgbench',
    scale: SCALE,
  })
  await runSteps(steps)
  return report()
}

export async function clusterBench(): Promise<Record<string, number | string>> {
  const { direct, load } = await withZenithCluster('cluster', 0, async (c) => {
    log(`direct mode: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    const run = await timedPgbench(c)
    return { direct: run, load: await halfRateLoad(c.repoDir, run) }
  })
  describeRun('direct mode', direct)
  log(
    `wal load: ${load.achieved_wal_mib_s} of ${load.target_wal_mib_s} MiB/s, ingest lag p99 ${load.ingest_lag_bytes_p99} bytes`,
  )
  const sk3 = await withZenithCluster('cluster-sk3', 3, (c) => {
    log(`3 safekeepers: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    return timedPgbench(c)
  })
  describeRun('3 safekeepers', sk3)
  const plain = await plainRun()
  log(`plain ${plain.toFixed(0)} tps`)
  const skCpu = sk3.safekeeperCpuS.reduce((a, b) => a + b, 0) / sk3.safekeeperCpuS.length
  return {
    tps_zenith: Math.round(direct.tps),
    tps_sk3: Math.round(sk3.tps),
    tps_plain: Math.round(plain),
    tps_ratio: Number((direct.tps / plain).toFixed(3)),
    tps_ratio_sk3: Number((sk3.tps / plain).toFixed(3)),
    wal_bytes_per_tx: Math.round(direct.walBytes / direct.transactions),
    wal_mb_s: Number((direct.walBytes / 1e6 / SECONDS).toFixed(1)),
    pageserver_wal_mb_per_cpu_s: mbPerCpuS(direct.walBytes, direct.pageserverCpuS),
    pageserver_wal_mb_per_cpu_s_sk3: mbPerCpuS(sk3.walBytes, sk3.pageserverCpuS),
    safekeeper_wal_mb_per_cpu_s: mbPerCpuS(sk3.walBytes, skCpu),
    ingest_lag_p99_bytes: direct.lag.p99,
    lag_max_bytes: direct.lag.max,
    lag_samples: direct.lag.samples,
    ingest_lag_p99_bytes_sk3: sk3.lag.p99,
    wal_load_target_mib_s: load.target_wal_mib_s ?? 0,
    wal_load_achieved_mib_s: load.achieved_wal_mib_s,
    wal_load_ingest_lag_p99_bytes: load.ingest_lag_bytes_p99,
  }
}
