/**
 * `zenith wal load` against a compute: clients drive the running writer of a branch through SQL with a
 * built-in workload (wal-load-workloads.ts), paced to a WAL or transaction rate (wal-load-pacer.ts), while
 * a monitor connection measures the WAL written (pg_current_wal_lsn) ten times a second and the lag
 * sampler (ingest-lag.ts) measures how far the pageserver and the safekeepers are behind the compute's
 * flush LSN. Each second the caller hears a progress line; at the end it gets the report.
 *
 * A transaction the server refuses is counted and the client goes on; a client whose connection is lost
 * ends the load with an error, since the compute stopping is not a figure to report. After the duration no
 * new transaction starts, and those in flight get a bounded time to commit: with a synchronous standby
 * that stopped answering they never would.
 */
import { ZenithError } from '../lib/errors.js'
import { percentile } from '../lib/percentile.js'
import { type Lsn, parseLsn } from '../postgres/lsn.js'
import { pgBinDir } from '../postgres/pg-bin.js'
import { PgClient } from '../protocol/client.js'
import { PgServerError } from '../protocol/errors.js'
import { endpointRunning } from './computes.js'
import { connstrOf } from './endpoints.js'
import { IngestLagSampler } from './ingest-lag.js'
import { safekeeperClientOf } from './layout.js'
import { type ClusterConfig, loadClusterConfig, tenantOf, timelineOfBranch } from './repo-config.js'
import type { Step } from './steps.js'
import { tenantPageserverClient } from './tenant-placement.js'
import { type LoadTarget, Pacer } from './wal-load-pacer.js'
import { lagFields, mibPerSecond, progressLine, round, type WalLoadReport } from './wal-load-report.js'
import { type Workload, type WorkloadName, workload } from './wal-load-workloads.js'

export interface WalLoadOptions {
  repoDir: string
  tenantId?: string
  branch: string
  target: LoadTarget
  durationMs: number
  clients: number
  workload: WorkloadName
  scale: number
}

export class WalLoadError extends ZenithError {
  override name = 'WalLoadError'
}

const MONITOR_PERIOD_MS = 100
/** After the duration, transactions in flight get this long to commit. */
const DRAIN_TIMEOUT_MS = 10_000

interface Compute {
  name: string
  port: number
  tenantId: string
  timelineId: string
}

/** The running writer of the branch: a load needs a compute that can write. */
async function writerOf(
  repoDir: string,
  c: ClusterConfig,
  tenantFlag: string | undefined,
  branch: string,
): Promise<Compute> {
  const tenantId = tenantOf(c, tenantFlag)
  const timelineId = timelineOfBranch(c, tenantId, branch)
  const writers = Object.entries(c.endpoints).filter(
    ([, e]) => e.tenantId === tenantId && e.timelineId === timelineId && e.lsn === undefined,
  )
  for (const [name, e] of writers) {
    if (await endpointRunning(repoDir, e, name)) return { name, port: e.port, tenantId, timelineId }
  }
  throw new WalLoadError(`no compute of branch ${branch} is running: a load needs its writer`, {
    kind: 'conflict',
    hint: `start one with \`zenith pg start ${writers[0]?.[0] ?? branch}\``,
  })
}

const connect = (port: number) => PgClient.connect({ host: '127.0.0.1', port, user: 'postgres' })

/** Latencies and counts of one second, for the progress line. */
class Window {
  latencies: number[] = []
  committed = 0
}

/** The load as two steps (set up the workload's tables, then load; its live title is the progress line), and the report once they ran. */
export async function walLoadSteps(
  opts: WalLoadOptions,
): Promise<{ steps: Step[]; report: () => WalLoadReport }> {
  const c = loadClusterConfig(opts.repoDir)
  const compute = await writerOf(opts.repoDir, c, opts.tenantId, opts.branch)
  const wl = workload(opts.workload, opts.scale)
  let report: WalLoadReport | null = null
  const steps: Step[] = [
    {
      title: `set up workload ${opts.workload} (scale ${opts.scale}) on compute ${compute.name}`,
      run: async () => {
        const sql = await connect(compute.port)
        try {
          return `workload ${opts.workload}: ${await wl.setup(sql, {
            connstr: connstrOf(compute.port),
            binDir: pgBinDir(c.pgDistribDir),
          })}`
        } finally {
          await sql.close()
        }
      },
    },
    {
      title: `load branch ${opts.branch} for ${opts.durationMs / 1000} s`,
      run: async (progress) => {
        report = await runLoad(opts, c, compute, wl, (line) => progress(`load: ${line}`))
        return `load: ${report.achieved_wal_mib_s.toFixed(2)} MiB/s WAL, ${report.tps.toFixed(0)} tps for ${report.duration_s.toFixed(1)} s`
      },
    },
  ]
  return {
    steps,
    report: () => {
      if (!report) throw new Error('walLoadSteps: report() before the load step ran')
      return report
    },
  }
}

async function runLoad(
  opts: WalLoadOptions,
  c: ClusterConfig,
  compute: Compute,
  wl: Workload,
  onProgress: (line: string) => void,
): Promise<WalLoadReport> {
  const monitor = await connect(compute.port)
  const clients: PgClient[] = []
  try {
    for (let i = 0; i < opts.clients; i++) clients.push(await connect(compute.port))
    const walAt = async (): Promise<{ insert: Lsn; flush: Lsn }> => {
      const [insert, flush] = (await monitor.query('SELECT pg_current_wal_lsn(), pg_current_wal_flush_lsn()'))
        .rows[0]
      return { insert: parseLsn(insert!), flush: parseLsn(flush!) }
    }
    const sampler = new IngestLagSampler(
      {
        tenantId: compute.tenantId,
        timelineId: compute.timelineId,
        pageserver: tenantPageserverClient(opts.repoDir, compute.tenantId),
        safekeepers: c.safekeepers.map((id) => safekeeperClientOf(opts.repoDir, id)),
      },
      async () => (await walAt()).flush,
    )

    const start = await walAt()
    const pacer = new Pacer(opts.target, opts.clients)
    const t0 = performance.now()
    const endAt = t0 + opts.durationMs
    const stopped = () => performance.now() >= endAt
    const latencies: number[] = []
    let committed = 0
    let errors = 0
    let firstError: string | null = null
    let window = new Window()
    let lost: Error | null = null

    const drive = async (client: PgClient, n: number) => {
      const r = Math.random
      while (lost === null && (await pacer.take(stopped))) {
        const sent = performance.now()
        try {
          await client.query(wl.transaction(r, n))
        } catch (err) {
          if (!(err instanceof PgServerError)) {
            lost ??= err as Error
            return
          }
          errors++
          firstError ??= err.message
          continue
        }
        const ms = performance.now() - sent
        latencies.push(ms)
        window.latencies.push(ms)
        window.committed++
        committed++
      }
    }
    let walNow = start.insert
    let lastSecond = { at: t0, wal: start.insert }
    const monitorLoop = async () => {
      while (!stopped() && lost === null) {
        walNow = (await walAt()).insert
        pacer.observe(walNow - start.insert, committed)
        const now = performance.now()
        if (now - lastSecond.at >= 1000) {
          const w = window
          window = new Window()
          const secs = (now - lastSecond.at) / 1000
          onProgress(
            progressLine({
              elapsed_s: (now - t0) / 1000,
              duration_s: opts.durationMs / 1000,
              wal_mib_s: mibPerSecond(walNow - lastSecond.wal, now - lastSecond.at),
              tps: w.committed / secs,
              commit_latency_ms_p50: w.latencies.length ? percentile(w.latencies, 50) : null,
              commit_latency_ms_p99: w.latencies.length ? percentile(w.latencies, 99) : null,
              lag: sampler.latest,
              errors,
            }),
          )
          lastSecond = { at: now, wal: walNow }
        }
        await new Promise((r) => setTimeout(r, MONITOR_PERIOD_MS))
      }
    }

    sampler.start()
    const driving = Promise.all(clients.map((cl, i) => drive(cl, i + 1)))
    let lag: Awaited<ReturnType<IngestLagSampler['stop']>>
    let drained: boolean
    // The figures are those of the duration; what commits while draining is not a second of it.
    let atEnd = { ms: 0, wal: start.insert, committed: 0 }
    try {
      await monitorLoop()
      atEnd = { ms: performance.now() - t0, wal: (await walAt()).insert, committed }
      drained = await Promise.race([
        driving.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), DRAIN_TIMEOUT_MS)),
      ])
    } finally {
      lag = await sampler.stop()
    }
    if (lost !== null) {
      throw new WalLoadError(
        `compute ${compute.name} stopped answering during the load: ${(lost as Error).message}`,
        { kind: 'unavailable', hint: '`zenith pg list` shows whether it still runs' },
      )
    }
    if (!drained) {
      errors++
      firstError ??= `transactions did not commit within ${DRAIN_TIMEOUT_MS / 1000} s after the end of the load`
    }
    const walBytes = atEnd.wal - start.insert
    const elapsedMs = atEnd.ms
    return {
      mode: 'compute',
      tenant_id: compute.tenantId,
      timeline_id: compute.timelineId,
      branch: opts.branch,
      target_wal_mib_s:
        opts.target.kind === 'wal' ? round(mibPerSecond(opts.target.bytesPerSec, 1000)) : null,
      target_tps: opts.target.kind === 'tps' ? opts.target.tps : null,
      duration_s: round(elapsedMs / 1000),
      wal_bytes: walBytes,
      achieved_wal_mib_s: round(mibPerSecond(walBytes, elapsedMs)),
      transactions: atEnd.committed,
      tps: round(atEnd.committed / (elapsedMs / 1000), 1),
      commit_latency_ms_p50: round(percentile(latencies, 50), 2),
      commit_latency_ms_p99: round(percentile(latencies, 99), 2),
      ...lagFields(lag),
      errors,
      first_error: firstError,
    }
  } finally {
    // Clients still waiting for a commit are closed under it: their transactions may or may not commit.
    await Promise.all([monitor, ...clients].map((cl) => cl.close().catch(() => undefined)))
  }
}
