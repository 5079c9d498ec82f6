/**
 * A local zenith cluster for the cluster benchmarks, each server in a process of its own as `zenith start`
 * runs them (one event loop for all would be the bottleneck, not the design), with a compute on main;
 * and the timed pgbench run on it with what it cost: the ingest lag sampled during the run and the CPU
 * time of the pageserver and of each safekeeper (their process_cpu_seconds_total), per WAL byte.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { initSteps } from '../src/control/cluster.js'
import { connstrOf, startEndpointSteps, stopEndpoint } from '../src/control/endpoints.js'
import { IngestLagSampler, type LagPercentiles } from '../src/control/ingest-lag.js'
import { pageserverClientOf, safekeeperClientOf } from '../src/control/layout.js'
import type { PageserverClient } from '../src/control/pageserver-client.js'
import { startPageserver, stopPageserver } from '../src/control/pageserver-process.js'
import { freePort } from '../src/control/process.js'
import { type EndpointSpec, loadClusterConfig } from '../src/control/repo-config.js'
import type { SafekeeperClient } from '../src/control/safekeeper-client.js'
import { startSafekeeper, stopSafekeeper } from '../src/control/safekeeper-process.js'
import { runSteps } from '../src/control/steps.js'
import { startStorageController, stopStorageController } from '../src/control/storage-controller-process.js'
import { parseMetrics } from '../src/lib/metrics.js'
import { type Lsn, parseLsn } from '../src/postgres/lsn.js'
import { PgClient } from '../src/protocol/client.js'
import { freePortBase } from '../test/harness/cli.js'
import { pgbench, pgbenchInit, SAMPLE_MS } from './pgbench.js'

export interface ZenithCluster {
  repoDir: string
  endpoint: EndpointSpec
  connstr: string
  pageserver: PageserverClient
  safekeepers: SafekeeperClient[]
  /** The compute's flush LSN. */
  flushLsn(): Promise<Lsn>
  /** The pageserver's last_record_lsn of main. */
  ingested(): Promise<Lsn>
}

/** The cluster's WAL and CPU figures over one timed pgbench run. */
export interface TimedRun {
  tps: number
  latencyMs: number
  transactions: number
  walBytes: number
  /** Pageserver lag behind the compute's flush LSN, sampled every SAMPLE_MS. */
  lag: LagPercentiles
  pageserverCpuS: number
  /** One per safekeeper, in id order. */
  safekeeperCpuS: number[]
}

async function cpuSeconds(client: { requestText(path: string): Promise<string> }): Promise<number> {
  const s = parseMetrics(await client.requestText('/metrics')).find(
    (m) => m.name === 'process_cpu_seconds_total',
  )
  if (!s) throw new Error(`${client.constructor.name}: no process_cpu_seconds_total in /metrics`)
  return s.value
}

/** Runs `fn` on a fresh cluster with `numSafekeepers` (0: direct mode), then stops and removes it all. */
export async function withZenithCluster<T>(
  name: string,
  numSafekeepers: 0 | 3,
  fn: (c: ZenithCluster) => Promise<T>,
): Promise<T> {
  const work = await mkdtemp(path.join(os.tmpdir(), `zenith-bench-${name}-`))
  await chmod(work, 0o755)
  const repoDir = path.join(work, 'repo')
  const [pgPort, httpPort, computeBase] = [await freePort(), await freePort(), await freePort()]
  const base = numSafekeepers > 0 ? await freePortBase(2 * numSafekeepers) : 0
  await runSteps(
    initSteps(repoDir, {
      pageserverPgPort: pgPort,
      pageserverHttpPort: httpPort,
      computePortBase: computeBase,
      numSafekeepers,
      ...(numSafekeepers > 0
        ? { safekeeperPortBases: { pgPortBase: base, httpPortBase: base + numSafekeepers } }
        : {}),
      storageControllerPort: await freePort(),
    }),
  )
  const ids = loadClusterConfig(repoDir).safekeepers
  await startStorageController(repoDir)
  let client: PgClient | null = null
  try {
    for (const id of ids) await startSafekeeper(repoDir, id)
    await startPageserver(repoDir, 1)
    await runSteps((await startEndpointSteps(repoDir, 'main')).steps)
    const endpoint = loadClusterConfig(repoDir).endpoints.main
    const sql = await PgClient.connect({ host: '127.0.0.1', port: endpoint.port, user: 'postgres' })
    client = sql
    const pageserver = pageserverClientOf(repoDir, 1)
    const result = await fn({
      repoDir,
      endpoint,
      connstr: connstrOf(endpoint.port),
      pageserver,
      safekeepers: ids.map((id) => safekeeperClientOf(repoDir, id)),
      flushLsn: async () => parseLsn((await sql.query('SELECT pg_current_wal_flush_lsn()')).rows[0][0]!),
      ingested: async () =>
        parseLsn((await pageserver.timeline(endpoint.tenantId, endpoint.timelineId)).last_record_lsn),
    })
    await client.close()
    client = null
    await stopEndpoint(repoDir, 'main')
    return result
  } finally {
    await client?.close()
    await stopPageserver(repoDir, 1).catch(() => undefined)
    for (const id of ids) await stopSafekeeper(repoDir, id).catch(() => undefined)
    await stopStorageController(repoDir)
    await rm(work, { recursive: true, force: true })
  }
}

/** `pgbench -i`, then the timed run, measuring WAL, lag and the servers' CPU over the timed run only. */
export async function timedPgbench(c: ZenithCluster): Promise<TimedRun> {
  await pgbenchInit(c.connstr)
  const sampler = new IngestLagSampler(
    {
      tenantId: c.endpoint.tenantId,
      timelineId: c.endpoint.timelineId,
      pageserver: c.pageserver,
      safekeepers: [],
    },
    c.flushLsn,
    SAMPLE_MS,
  )
  const cpu = () => Promise.all([cpuSeconds(c.pageserver), ...c.safekeepers.map(cpuSeconds)])
  const [cpuBefore, walBefore] = [await cpu(), await c.flushLsn()]
  let lag: LagPercentiles
  sampler.start()
  let run: Awaited<ReturnType<typeof pgbench>>
  try {
    run = await pgbench(c.connstr)
  } finally {
    lag = (await sampler.stop()).pageserver
  }
  const [cpuAfter, walAfter] = [await cpu(), await c.flushLsn()]
  const used = cpuAfter.map((v, i) => v - cpuBefore[i])
  return {
    ...run,
    walBytes: walAfter - walBefore,
    lag,
    pageserverCpuS: used[0],
    safekeeperCpuS: used.slice(1),
  }
}
