/**
 * What the dashboard shows, derived from consecutive samples (dashboard-sample.ts) without any I/O:
 * rates from counter deltas, GetPage p99 from histogram bucket deltas, each timeline's LSN ladder
 * (lsnLadder, the one ladder of the CLI), and the last minute of every figure drawn as a sparkline.
 * `frameData(prev, sample, now)` is pure, so the panels can be tested on recorded samples.
 */
import type { MetricSample } from '../lib/metrics.js'
import type { LayerMapInfo, TimelineInfo } from '../pageserver/api-types.js'
import type { DashboardSample, ProcessSample } from './dashboard-sample.js'
import { LAYER_KINDS, type LayerKind, type LayerMapMarker, layerTotals, timelineMarkers } from './layers.js'
import { type LadderRung, timelineLadder } from './lsn-ladder.js'
import { onSafekeepersOf, safekeeperViewOf } from './safekeeper-view.js'

/** Samples kept for a sparkline: a minute at the default refresh of one second. */
export const HISTORY_LENGTH = 60

export interface TimelineFrame {
  tenant_id: string
  timeline_id: string
  /** The pageserver that holds its tenant, whose figures the ladder's pageserver rungs are. */
  pageserver_id: number
  /** Its branch name in the repo config; null for a timeline the config does not name. */
  branch: string | null
  ancestor_timeline_id: string | null
  ancestor_lsn: string | null
  /** Null when the pageserver did not answer or does not have it. */
  walreceiver_status: string | null
  logical_size: number | null
  ladder: LadderRung[]
  /** The pageserver's last_record lag behind the compute, oldest first; null where it was not known. */
  lag_bytes_history: (number | null)[]
  lag_seconds_history: (number | null)[]
}

export interface Rates {
  ingest_bytes_per_s: number | null
  ingest_records_per_s: number | null
  getpage_per_s: number | null
  /** The upper bound of the bucket holding the 99th percentile of this refresh's GetPage requests. */
  getpage_p99_seconds: number | null
}

export interface TaskRow {
  kind: string
  running: number
  runs: number
  failures: number
  last_run_ago_s: number | null
  last_duration_s: number | null
}

export interface LayersFrame {
  tenant_id: string
  timeline_id: string
  by_kind: { kind: LayerKind; count: number; bytes: number }[]
  /** The layers as GET …/layer gave them, for the layer map. */
  info: LayerMapInfo
  /** The LSNs the layer map marks (branch points, GC cutoff, disk_consistent, last_record). */
  markers: LayerMapMarker[]
  last_record_lsn: string | null
}

/** The raw totals rates are measured from, carried to the next frame. */
export interface Counters {
  ingest_bytes: number | null
  ingest_records: number | null
  getpage: number | null
  getpage_buckets: { le: number; count: number }[] | null
  cache_hits: number | null
  cache_misses: number | null
}

export interface DashboardFrame {
  at_ms: number
  processes: (ProcessSample & { uptime_s: number | null })[]
  /** The pageservers that gave nothing this refresh, and why: their tenants' rungs are empty. */
  pageservers_unreachable: { name: string; reason: string }[]
  timelines: TimelineFrame[]
  /** The pageserver the rates, memory and tasks are of: the one holding the selected timeline. */
  figures_pageserver: { id: number; name: string }
  rates: Rates
  rate_history: { [K in keyof Rates]: (number | null)[] }
  memory: {
    open_layer_bytes: number | null
    budget_bytes: number | null
    page_cache_bytes: number | null
    /** Page cache hits of all reads since the pageserver started, and of this refresh's reads. */
    hit_ratio: number | null
    hit_ratio_recent: number | null
  }
  tasks: TaskRow[]
  /** The selected timeline's layers; null when there are none to show. */
  layers: LayersFrame | null
  requests: Record<string, number>
  /** Each pageserver's totals by its id: rates stay right when the selection moves to another. */
  counters: Record<string, Counters>
}

const keep = <T>(history: readonly T[] | undefined, next: T): T[] =>
  [...(history ?? []), next].slice(-HISTORY_LENGTH)

const samplesOf = (metrics: readonly MetricSample[], name: string) => metrics.filter((m) => m.name === name)

function total(metrics: readonly MetricSample[], name: string): number | null {
  const s = samplesOf(metrics, name)
  return s.length === 0 ? null : s.reduce((n, m) => n + m.value, 0)
}

/**
 * How much a counter grew; after a reset (the pageserver restarted) the whole new value, never a
 * negative amount. Null when either end is unknown.
 */
export function counterDelta(prev: number | null | undefined, cur: number | null): number | null {
  if (prev === null || prev === undefined || cur === null) return null
  return cur >= prev ? cur - prev : cur
}

function rate(prev: number | null | undefined, cur: number | null, seconds: number | null): number | null {
  const d = counterDelta(prev, cur)
  return d === null || seconds === null || seconds <= 0 ? null : d / seconds
}

function buckets(metrics: readonly MetricSample[], name: string): Counters['getpage_buckets'] {
  const s = samplesOf(metrics, `${name}_bucket`)
  if (s.length === 0) return null
  return s
    .map((m) => ({
      le: m.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(m.labels.le),
      count: m.value,
    }))
    .sort((a, b) => a.le - b.le)
}

/**
 * The 99th percentile of the observations between two scrapes of a histogram, as the upper bound of the
 * bucket it falls in; past the last finite bound, that bound (the answer is "at least this"). Null when
 * nothing was observed in between.
 */
export function p99OfDelta(
  prev: Counters['getpage_buckets'] | undefined,
  cur: Counters['getpage_buckets'],
): number | null {
  if (!prev || !cur || prev.length !== cur.length) return null
  let deltas = cur.map((b, i) => b.count - prev[i].count)
  // A reset: every bucket starts again from zero, so the new counts are the whole delta.
  if (deltas.some((d) => d < 0)) deltas = cur.map((b) => b.count)
  const n = deltas.at(-1)!
  if (n <= 0) return null
  const i = deltas.findIndex((d) => d >= 0.99 * n)
  const finite = cur.filter((b) => Number.isFinite(b.le))
  return Number.isFinite(cur[i].le) ? cur[i].le : (finite.at(-1)?.le ?? null)
}

function ladderOf(
  sample: DashboardSample,
  tl: { tenant_id: string; timeline_id: string },
  info: TimelineInfo | null,
) {
  const writer = sample.computes.find(
    (c) => c.timeline_id === tl.timeline_id && c.lsn === null && c.unreachable === null,
  )
  const views = sample.safekeepers.map((sk) => {
    const t = sk.timelines.find((t) => t.tenant_id === tl.tenant_id && t.timeline_id === tl.timeline_id)
    return safekeeperViewOf(sk.id, sk.unreachable === null, t ?? null)
  })
  return timelineLadder(writer ?? null, onSafekeepersOf(views), info)
}

/** Every timeline the config names, then any other a pageserver holds, each tenant's in order. */
function timelinesOf(sample: DashboardSample) {
  const list = sample.branches.map((b) => ({ tenant_id: b.tenant_id, timeline_id: b.timeline_id }))
  for (const p of sample.pageservers)
    for (const t of p.tenants)
      for (const tl of t.timelines)
        if (!list.some((l) => l.timeline_id === tl.timeline_id))
          list.push({ tenant_id: tl.tenant_id, timeline_id: tl.timeline_id })
  return list
}

function countersOf(m: readonly MetricSample[]): Counters {
  return {
    ingest_bytes: total(m, 'pageserver_wal_ingest_bytes_total'),
    ingest_records: total(m, 'pageserver_wal_ingest_records_total'),
    getpage: total(m, 'pageserver_getpage_requests_total'),
    getpage_buckets: buckets(m, 'pageserver_getpage_seconds'),
    cache_hits: total(m, 'pageserver_page_cache_hits_total'),
    cache_misses: total(m, 'pageserver_page_cache_misses_total'),
  }
}

/** The layer map's markers, from the timeline's figures and its children among the listed timelines. */
function markersOf(
  info: TimelineInfo | undefined,
  timelines: readonly TimelineFrame[],
): Pick<LayersFrame, 'markers' | 'last_record_lsn'> {
  if (!info) return { markers: [], last_record_lsn: null }
  const children = timelines.filter((t) => t.ancestor_timeline_id === info.timeline_id)
  return { markers: timelineMarkers(info, children), last_record_lsn: info.last_record_lsn }
}

function layersFrame(info: LayerMapInfo): LayersFrame['by_kind'] {
  const totals = layerTotals(info)
  return LAYER_KINDS.map((kind) => ({ kind, ...totals[kind] }))
}

function taskRows(metrics: readonly MetricSample[], now: number): TaskRow[] {
  const byKind = (name: string) =>
    new Map(samplesOf(metrics, name).map((m) => [m.labels.kind, m.value] as [string, number]))
  const running = byKind('pageserver_background_tasks_running')
  const runs = byKind('pageserver_background_task_runs_total')
  const failures = byKind('pageserver_background_task_failures_total')
  const duration = byKind('pageserver_background_task_last_duration_seconds')
  const lastRun = byKind('pageserver_background_task_last_run_timestamp_seconds')
  return [...runs.keys()].sort().map((kind) => {
    const at = lastRun.get(kind)
    return {
      kind,
      running: running.get(kind) ?? 0,
      runs: runs.get(kind) ?? 0,
      failures: failures.get(kind) ?? 0,
      last_run_ago_s: at === undefined ? null : Math.max(0, now / 1000 - at),
      last_duration_s: duration.get(kind) ?? null,
    }
  })
}

export function frameData(prev: DashboardFrame | null, sample: DashboardSample, now: number): DashboardFrame {
  const shownId = sample.figures_pageserver_id
  const shown = sample.pageservers.find((p) => p.id === shownId)
  const m = shown?.metrics ?? []
  const seconds = prev ? (sample.at_ms - prev.at_ms) / 1000 : null
  const allCounters = Object.fromEntries(sample.pageservers.map((p) => [p.id, countersOf(p.metrics)]))
  const counters = allCounters[shownId] ?? countersOf([])
  const pc = prev?.counters[shownId]
  // The sparklines are one pageserver's minute: another's starts them anew.
  const history = prev?.figures_pageserver.id === shownId ? prev.rate_history : undefined
  const rates: Rates = {
    ingest_bytes_per_s: rate(pc?.ingest_bytes, counters.ingest_bytes, seconds),
    ingest_records_per_s: rate(pc?.ingest_records, counters.ingest_records, seconds),
    getpage_per_s: rate(pc?.getpage, counters.getpage, seconds),
    getpage_p99_seconds: p99OfDelta(pc?.getpage_buckets, counters.getpage_buckets),
  }
  const rate_history = Object.fromEntries(
    (Object.keys(rates) as (keyof Rates)[]).map((k) => [k, keep(history?.[k], rates[k])]),
  ) as DashboardFrame['rate_history']

  const infos = new Map(
    sample.pageservers.flatMap((p) =>
      p.tenants.flatMap((t) => t.timelines.map((tl) => [tl.timeline_id, tl])),
    ),
  )
  const branchOf = new Map(sample.branches.map((b) => [b.timeline_id, b.name]))
  const timelines = timelinesOf(sample).map((tl): TimelineFrame => {
    const info = infos.get(tl.timeline_id) ?? null
    const ladder = ladderOf(sample, tl, info)
    const before = prev?.timelines.find((p) => p.timeline_id === tl.timeline_id)
    const lastRecord = ladder.find((r) => r.name === 'last_record')
    return {
      ...tl,
      pageserver_id: sample.tenant_pageservers[tl.tenant_id],
      branch: branchOf.get(tl.timeline_id) ?? null,
      ancestor_timeline_id: info?.ancestor_timeline_id ?? null,
      ancestor_lsn: info?.ancestor_lsn ?? null,
      walreceiver_status: info?.walreceiver_status ?? null,
      logical_size: info?.current_logical_size ?? null,
      ladder,
      lag_bytes_history: keep(before?.lag_bytes_history, lastRecord?.lag_bytes ?? null),
      lag_seconds_history: keep(before?.lag_seconds_history, lastRecord?.lag_seconds ?? null),
    }
  })

  const hits = counters.cache_hits
  const misses = counters.cache_misses
  const dHits = counterDelta(pc?.cache_hits, hits)
  const dMisses = counterDelta(pc?.cache_misses, misses)
  const one = (name: string) => total(m, name)
  const layers = sample.layers
  return {
    at_ms: sample.at_ms,
    processes: sample.processes.map((p) => ({
      ...p,
      uptime_s: p.started_at_ms === null ? null : Math.max(0, (now - p.started_at_ms) / 1000),
    })),
    pageservers_unreachable: sample.pageservers.flatMap((p) =>
      p.unreachable === null ? [] : [{ name: p.name, reason: p.unreachable }],
    ),
    timelines,
    figures_pageserver: { id: shownId, name: shown?.name ?? `pageserver ${shownId}` },
    rates,
    rate_history,
    memory: {
      open_layer_bytes: one('pageserver_open_layer_bytes'),
      budget_bytes: one('pageserver_memory_budget_bytes'),
      page_cache_bytes: one('pageserver_page_cache_size_bytes'),
      hit_ratio: hits !== null && misses !== null && hits + misses > 0 ? hits / (hits + misses) : null,
      hit_ratio_recent:
        dHits !== null && dMisses !== null && dHits + dMisses > 0 ? dHits / (dHits + dMisses) : null,
    },
    tasks: taskRows(m, now),
    layers: layers
      ? {
          tenant_id: layers.tenant_id,
          timeline_id: layers.timeline_id,
          by_kind: layersFrame(layers.info),
          info: layers.info,
          ...markersOf(infos.get(layers.timeline_id), timelines),
        }
      : null,
    requests: sample.requests,
    counters: allCounters,
  }
}
