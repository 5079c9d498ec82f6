/**
 * What `zenith dashboard` reads of the cluster on each refresh, and nothing else: the pid files, the
 * storage controller's state file (which pageserver holds each tenant), every pageserver's and
 * safekeeper's HTTP API and one SQL round trip per running compute. Each process is asked once per
 * refresh with a short timeout, and a process that does not answer becomes an `unreachable` reason on
 * its own component instead of failing the sample, so one dead server never blanks the screen. dashboard-frame.ts turns consecutive samples into what the panels show.
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
import { tenantPlacements } from './tenant-placement.js'

/** A refresh waits this long for any one answer: the screen must keep its pace. */
export const SAMPLE_TIMEOUT_MS = 800

export interface ProcessSample {
  kind: 'pageserver' | 'safekeeper' | 'compute'
  /** "pageserver" (the first), "pageserver 2", "safekeeper 1", "compute main". */
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
  id: number
  /** As its process row names it. */
  name: string
  /** Why the pageserver gave no figures this refresh; null when it answered. */
  unreachable: string | null
  /** The tenants it holds (tenant-placement), with their timelines; others it lists are left out. */
  tenants: { tenant_id: string; timelines: TimelineInfo[] }[]
  metrics: MetricSample[]
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
  /** Every pageserver of the cluster config, in its order. */
  pageservers: PageserverSample[]
  /** The pageserver that holds each tenant of the repo config and each one a pageserver holds. */
  tenant_pageservers: Record<string, number>
  /**
   * The pageserver whose figures (rates, memory, tasks) the screen shows: the one holding the selected
   * timeline, else the first.
   */
  figures_pageserver_id: number
  /** The layers of the selected timeline, from its pageserver; null when none is selected or it did not answer. */
  layers: { tenant_id: string; timeline_id: string; info: LayerMapInfo } | null
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

/**
 * One pageserver: what it lists, its metrics, and the timelines of the tenants it holds, since a tenant
 * being moved is listed by two pageservers and its figures are the holder's. The selected timeline's
 * layers are asked of its holder only.
 */
async function samplePageserver(
  { id, name }: { id: number; name: string },
  client: PageserverClient,
  holds: (tenantId: string) => boolean,
  selected: SampleOptions['selected'],
  timeoutMs: number,
): Promise<PageserverSample & { layers: DashboardSample['layers'] }> {
  const sel = selected && holds(selected.tenant_id) ? selected : null
  try {
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
    const held = tenants.filter((t) => holds(t.id))
    const timelines = await within(timeoutMs, Promise.all(held.map((t) => client.timelines(t.id, timeoutMs))))
    return {
      id,
      name,
      unreachable: null,
      tenants: held.map((t, i) => ({ tenant_id: t.id, timelines: timelines[i] })),
      metrics: parseMetrics(metrics),
      layers,
    }
  } catch (err) {
    return { id, name, unreachable: reason(err), tenants: [], metrics: [], layers: null }
  }
}

/** One look at the whole cluster. */
export async function sampleCluster(repoDir: string, opts: SampleOptions = {}): Promise<DashboardSample> {
  const timeoutMs = opts.timeoutMs ?? SAMPLE_TIMEOUT_MS
  const config = loadClusterConfig(repoDir)
  const requests: Record<string, number> = {}

  const holderOf = tenantPlacements(repoDir)
  const psCfgs = config.pageservers.map((id) => pageserverConfigOf(repoDir, id))
  const psProcs = config.pageservers.map((id, i) =>
    serverProcess('pageserver', pageserverFiles(repoDir, id), [
      `http ${psCfgs[i].listenHttpAddr.port}`,
      `pg ${psCfgs[i].listenPgAddr.port}`,
    ]),
  )
  const psClients = psCfgs.map((cfg) => new PageserverClient(cfg.listenHttpAddr))
  const pageserversP = Promise.all(
    config.pageservers.map((id, i) =>
      psProcs[i].state === 'running'
        ? samplePageserver(
            { id, name: psProcs[i].name },
            psClients[i],
            (t) => holderOf(t) === id,
            opts.selected,
            timeoutMs,
          )
        : Promise.resolve({
            id,
            name: psProcs[i].name,
            unreachable: `not running (${psProcs[i].state})`,
            tenants: [],
            metrics: [],
            layers: null,
          }),
    ),
  )

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

  const [pageservers, safekeepers, computes] = await Promise.all([pageserversP, safekeepersP, computesP])
  pageservers.forEach((p, i) => {
    psProcs[i].unreachable = psProcs[i].state === 'running' ? p.unreachable : null
    requests[psProcs[i].name] = psClients[i].requests
  })
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

  const tenantIds = new Set([
    ...Object.keys(config.branches),
    ...pageservers.flatMap((p) => p.tenants.map((t) => t.tenant_id)),
  ])
  const sel = opts.selected ?? null
  return {
    at_ms: Date.now(),
    processes: [...psProcs, ...skProcs, ...computeProcs],
    pageservers: pageservers.map(({ layers: _, ...p }) => p),
    tenant_pageservers: Object.fromEntries([...tenantIds].map((t) => [t, holderOf(t)])),
    figures_pageserver_id:
      sel && config.pageservers.includes(holderOf(sel.tenant_id))
        ? holderOf(sel.tenant_id)
        : (config.pageservers[0] ?? FIRST_PAGESERVER),
    layers: pageservers.find((p) => p.layers !== null)?.layers ?? null,
    safekeepers,
    computes: computes.filter((c): c is ComputeSample => c !== null),
    branches,
    requests,
  }
}
