/**
 * What `zenith dashboard` reads of the cluster on each refresh, and nothing else: the pid files, the
 * pageserver's and the safekeepers' HTTP APIs and one SQL round trip per running compute. Each process
 * is asked once per refresh with a short timeout, and a process that does not answer becomes an
 * `unreachable` reason on its own component instead of failing the sample, so one dead server never
 * blanks the screen. dashboard-frame.ts turns consecutive samples into what the panels show.
 */
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { type MetricSample, parseMetrics } from '../lib/metrics.js'
import type { LayerMapInfo, TimelineInfo } from '../pageserver/api-types.js'
import type { SkTimelineInfo } from '../safekeeper/api-types.js'
import { computeWalLsns } from './computes.js'
import {
  endpointDataDir,
  endpointLogFile,
  FIRST_PAGESERVER,
  pageserverConfigOf,
  safekeeperConfigOf,
} from './layout.js'
import { PageserverClient } from './pageserver-client.js'
import { pageserverFiles } from './pageserver-process.js'
import { isAlive, lastLogLines, readPidFile } from './process.js'
import { loadClusterConfig } from './repo-config.js'
import { SafekeeperClient } from './safekeeper-client.js'
import { safekeeperFiles } from './safekeeper-process.js'
import { type ServerFiles, serverState } from './server-process.js'

/** A refresh waits this long for any one answer: the screen must keep its pace. */
export const SAMPLE_TIMEOUT_MS = 800

export interface ProcessSample {
  kind: 'pageserver' | 'safekeeper' | 'compute'
  /** "pageserver", "safekeeper 1", "compute main". */
  name: string
  state: 'running' | 'stopped' | 'died'
  pid: number | null
  /** What it listens on, e.g. `http 9898`, `pg 64000`. */
  ports: string[]
  /** When the running process started, ms since the epoch; null when not running or not known. */
  started_at_ms: number | null
  /** A dead process's last log line, which should say why. */
  last_log_line: string | null
  /** It runs, but did not answer this refresh: why. */
  unreachable: string | null
}

export interface PageserverSample {
  /** Why the pageserver gave no figures this refresh; null when it answered. */
  unreachable: string | null
  tenants: { tenant_id: string; timelines: TimelineInfo[] }[]
  metrics: MetricSample[]
  /** The layers of the selected timeline; null when none is selected or it did not answer. */
  layers: { tenant_id: string; timeline_id: string; info: LayerMapInfo } | null
}

export interface SafekeeperSample {
  id: number
  unreachable: string | null
  timelines: SkTimelineInfo[]
}

export interface ComputeSample {
  /** The endpoint's name. */
  name: string
  tenant_id: string
  timeline_id: string
  /** A read-only endpoint's fixed LSN; null for one that follows its branch. */
  lsn: string | null
  unreachable: string | null
  insert_lsn: string | null
  flush_lsn: string | null
}

export interface DashboardSample {
  at_ms: number
  processes: ProcessSample[]
  pageserver: PageserverSample
  safekeepers: SafekeeperSample[]
  /** The running computes. */
  computes: ComputeSample[]
  /** The branches of the repo config, tenant by tenant in its order. */
  branches: { tenant_id: string; timeline_id: string; name: string }[]
  /** Requests sent to each process (by ProcessSample name) for this sample. */
  requests: Record<string, number>
}

export interface SampleOptions {
  /** The timeline whose layers to fetch. */
  selected?: { tenant_id: string; timeline_id: string } | null
  timeoutMs?: number
}

/** Rejects after `ms`: a server that accepted the connection and then hangs must not hold up a refresh. */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err))

/** A server's state from its pid file; a running one started when its pid file was written. */
function serverProcess(kind: ProcessSample['kind'], files: ServerFiles, ports: string[]): ProcessSample {
  const s = serverState(files)
  let started: number | null = null
  if (s.running) {
    try {
      started = statSync(files.pidFile).mtimeMs
    } catch {
      started = null
    }
  }
  return {
    kind,
    name: files.name,
    state: s.state,
    pid: s.pid,
    ports,
    started_at_ms: started,
    last_log_line: s.last_log_lines?.at(-1) ?? null,
    unreachable: null,
  }
}

/**
 * A compute from its postmaster.pid (pid, start time in seconds on line 3): reading a file costs the
 * cluster nothing, where `pg_ctl status` would start a process every refresh.
 */
function computeProcess(repoDir: string, tenantId: string, name: string, port: number): ProcessSample {
  const pidFile = path.join(endpointDataDir(repoDir, tenantId, name), 'postmaster.pid')
  const pid = readPidFile(pidFile)
  let lines: string[] = []
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n')
  } catch {
    lines = []
  }
  const running = pid !== null && isAlive(pid)
  // Postgres removes its pid file on a clean stop; one left naming a dead process means it died.
  const died = !running && lines.length > 0
  return {
    kind: 'compute',
    name: `compute ${name}`,
    state: running ? 'running' : died ? 'died' : 'stopped',
    pid: running ? pid : null,
    ports: [`pg ${port}`],
    started_at_ms: running && /^\d+$/.test(lines[2] ?? '') ? Number(lines[2]) * 1000 : null,
    last_log_line: died ? (lastLogLines(endpointLogFile(repoDir, tenantId, name), 1)[0] ?? null) : null,
    unreachable: null,
  }
}

async function samplePageserver(
  client: PageserverClient,
  opts: SampleOptions,
  timeoutMs: number,
): Promise<PageserverSample> {
  const empty: PageserverSample = { unreachable: null, tenants: [], metrics: [], layers: null }
  try {
    const sel = opts.selected ?? null
    const [tenants, metrics, layers] = await within(
      timeoutMs,
      Promise.all([
        client.tenants(timeoutMs),
        client.metrics(timeoutMs),
        // The selected timeline may be gone (deleted, another repo): its layers are then simply absent.
        sel
          ? client
              .layers(sel.tenant_id, sel.timeline_id, timeoutMs)
              .then((info) => ({ ...sel, info }))
              .catch(() => null)
          : Promise.resolve(null),
      ]),
    )
    const timelines = await within(
      timeoutMs,
      Promise.all(tenants.map((t) => client.timelines(t.id, timeoutMs))),
    )
    return {
      unreachable: null,
      tenants: tenants.map((t, i) => ({ tenant_id: t.id, timelines: timelines[i] })),
      metrics: parseMetrics(metrics),
      layers,
    }
  } catch (err) {
    return { ...empty, unreachable: reason(err) }
  }
}

/** One look at the whole cluster. */
export async function sampleCluster(repoDir: string, opts: SampleOptions = {}): Promise<DashboardSample> {
  const timeoutMs = opts.timeoutMs ?? SAMPLE_TIMEOUT_MS
  const config = loadClusterConfig(repoDir)
  const requests: Record<string, number> = {}

  const psCfg = pageserverConfigOf(repoDir, FIRST_PAGESERVER)
  const ps = serverProcess('pageserver', pageserverFiles(repoDir, FIRST_PAGESERVER), [
    `http ${psCfg.listenHttpAddr.port}`,
    `pg ${psCfg.listenPgAddr.port}`,
  ])
  const psClient = new PageserverClient(psCfg.listenHttpAddr)
  const pageserverP: Promise<PageserverSample> =
    ps.state === 'running'
      ? samplePageserver(psClient, opts, timeoutMs)
      : Promise.resolve({ unreachable: `not running (${ps.state})`, tenants: [], metrics: [], layers: null })

  // Each config file is read once per refresh: the process row and the client both come from it.
  const skCfgs = config.safekeepers.map((id) => safekeeperConfigOf(repoDir, id))
  const skProcs = config.safekeepers.map((id, i) =>
    serverProcess('safekeeper', safekeeperFiles(repoDir, id), [
      `http ${skCfgs[i].listenHttpAddr.port}`,
      `pg ${skCfgs[i].listenPgAddr.port}`,
    ]),
  )
  const skClients = config.safekeepers.map((id, i) => new SafekeeperClient(skCfgs[i].listenHttpAddr, id))
  const safekeepersP = Promise.all(
    config.safekeepers.map(async (id, i): Promise<SafekeeperSample> => {
      if (skProcs[i].state !== 'running')
        return { id, unreachable: `not running (${skProcs[i].state})`, timelines: [] }
      try {
        return {
          id,
          unreachable: null,
          timelines: await within(timeoutMs, skClients[i].timelines(timeoutMs)),
        }
      } catch (err) {
        return { id, unreachable: reason(err), timelines: [] }
      }
    }),
  )

  const endpoints = Object.entries(config.endpoints)
  const computeProcs = endpoints.map(([name, e]) => computeProcess(repoDir, e.tenantId, name, e.port))
  const computesP = Promise.all(
    endpoints.map(async ([name, e], i): Promise<ComputeSample | null> => {
      if (computeProcs[i].state !== 'running') return null
      requests[computeProcs[i].name] = 1
      const base = { name, tenant_id: e.tenantId, timeline_id: e.timelineId, lsn: e.lsn ?? null }
      try {
        return { ...base, unreachable: null, ...(await within(timeoutMs, computeWalLsns(e.port, timeoutMs))) }
      } catch (err) {
        return { ...base, unreachable: reason(err), insert_lsn: null, flush_lsn: null }
      }
    }),
  )

  const [pageserver, safekeepers, computes] = await Promise.all([pageserverP, safekeepersP, computesP])
  ps.unreachable = ps.state === 'running' ? pageserver.unreachable : null
  requests[ps.name] = psClient.requests
  safekeepers.forEach((s, i) => {
    skProcs[i].unreachable = skProcs[i].state === 'running' ? s.unreachable : null
    requests[skProcs[i].name] = skClients[i].requests
  })
  computes.forEach((c, i) => {
    if (c) computeProcs[i].unreachable = c.unreachable
  })

  const branches = Object.entries(config.branches).flatMap(([tenant_id, byName]) =>
    Object.entries(byName).map(([name, timeline_id]) => ({ tenant_id, timeline_id, name })),
  )

  return {
    at_ms: Date.now(),
    processes: [ps, ...skProcs, ...computeProcs],
    pageserver,
    safekeepers,
    computes: computes.filter((c): c is ComputeSample => c !== null),
    branches,
    requests,
  }
}
