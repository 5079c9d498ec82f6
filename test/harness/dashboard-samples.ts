/**
 * Dashboard samples built from the typed API shapes (TimelineInfo, SkTimelineInfo, LayerMapInfo and the
 * pageserver's /metrics text), as sampleCluster returns them from a live cluster: one tenant with `main`
 * and a branch `feature` on one of the pageservers, one safekeeper and a compute writing on main. Tests
 * change what they look at.
 */
import type { DashboardSample } from '../../src/control/dashboard-sample.js'
import { parseMetrics } from '../../src/lib/metrics.js'
import type { LayerMapInfo, TimelineInfo } from '../../src/pageserver/api-types.js'
import type { SkTimelineInfo } from '../../src/safekeeper/api-types.js'

export const TENANT = '0f3c5a7e9b1d4f6a8c0e2b4d6f8a0c2e'
export const MAIN = '1a2b3c4d5e6f708192a3b4c5d6e7f809'
export const FEATURE = '9f8e7d6c5b4a39281706f5e4d3c2b1a0'

export const GETPAGE_BOUNDS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1]

export interface Figures {
  ingestBytes: number
  ingestRecords: number
  getpage: number
  /** Observations per GetPage bucket (not cumulative), one per bound plus one past the last. */
  getpageObs: number[]
  hits: number
  misses: number
}

export const ZERO: Figures = {
  ingestBytes: 0,
  ingestRecords: 0,
  getpage: 0,
  getpageObs: GETPAGE_BOUNDS.map(() => 0).concat(0),
  hits: 0,
  misses: 0,
}

/** The pageserver's /metrics text with these totals, in the names pageserver-metrics.ts exposes. */
export function metricsText(f: Figures, now = 1_700_000_000_000): string {
  let cum = 0
  const bucketLines = f.getpageObs.map((n, i) => {
    cum += n
    const le = i < GETPAGE_BOUNDS.length ? String(GETPAGE_BOUNDS[i]) : '+Inf'
    return `pageserver_getpage_seconds_bucket{le="${le}"} ${cum}`
  })
  return [
    '# TYPE pageserver_wal_ingest_bytes_total counter',
    `pageserver_wal_ingest_bytes_total ${f.ingestBytes}`,
    `pageserver_wal_ingest_records_total ${f.ingestRecords}`,
    `pageserver_getpage_requests_total ${f.getpage}`,
    ...bucketLines,
    `pageserver_getpage_seconds_count ${cum}`,
    `pageserver_page_cache_hits_total ${f.hits}`,
    `pageserver_page_cache_misses_total ${f.misses}`,
    'pageserver_open_layer_bytes 3145728',
    'pageserver_memory_budget_bytes 134217728',
    'pageserver_page_cache_size_bytes 67108864',
    'pageserver_background_tasks_running{kind="compaction"} 1',
    'pageserver_background_task_runs_total{kind="compaction"} 12',
    'pageserver_background_task_failures_total{kind="compaction"} 0',
    'pageserver_background_task_last_duration_seconds{kind="compaction"} 0.25',
    `pageserver_background_task_last_run_timestamp_seconds{kind="compaction"} ${now / 1000 - 3}`,
    'pageserver_background_task_runs_total{kind="gc"} 2',
    'pageserver_background_task_failures_total{kind="gc"} 1',
    'pageserver_background_task_last_duration_seconds{kind="gc"} 0.004',
    `pageserver_background_task_last_run_timestamp_seconds{kind="gc"} ${now / 1000 - 40}`,
    '',
  ].join('\n')
}

export function timelineInfo(
  timelineId: string,
  lsns: { last: string; disk: string },
  over: Partial<TimelineInfo> = {},
): TimelineInfo {
  return {
    tenant_id: TENANT,
    timeline_id: timelineId,
    ancestor_timeline_id: null,
    ancestor_lsn: null,
    last_record_lsn: lsns.last,
    prev_record_lsn: null,
    disk_consistent_lsn: lsns.disk,
    remote_consistent_lsn: lsns.disk,
    remote_consistent_lsn_visible: lsns.disk,
    latest_gc_cutoff_lsn: '0/1000000',
    applied_gc_cutoff_lsn: '0/1000000',
    initdb_lsn: '0/14EE1A8',
    current_logical_size: 23_000_000,
    current_logical_size_is_accurate: true,
    pg_version: 15,
    state: 'Active',
    wal_source_connstr: null,
    last_received_msg_lsn: lsns.last,
    last_received_msg_ts: null,
    walreceiver_status: 'streaming',
    walreceiver_error: null,
    wal_source_end_lsn: lsns.last,
    lag_seconds: { last_record: 0.2, disk_consistent: 4.5, remote_consistent: 4.5 },
    ...over,
  }
}

export function skTimeline(timelineId: string, flush: string, commit: string): SkTimelineInfo {
  return {
    safekeeper_id: 1,
    safekeeper_connstr: '127.0.0.1:5455',
    tenant_id: TENANT,
    timeline_id: timelineId,
    system_id: '7300000000000000000',
    pg_timeline: 1,
    wal_seg_size: 16 * 1024 * 1024,
    acceptor_state: { term: 2, epoch: 2, term_history: [] },
    flush_lsn: flush,
    commit_lsn: commit,
    compute_end_lsn: flush,
    lag_seconds: { flush: 0, commit: 0.1 },
    truncate_lsn: '0/14EE1A8',
    backup_lsn: '0/0',
    peer_horizon_lsn: '0/0',
    remote_consistent_lsn: '0/0',
    timeline_start_lsn: '0/14EE1A8',
    local_start_lsn: '0/14EE1A8',
    walreceivers: [],
    walsenders: [],
    peers: [],
    recovery: null,
    pageserver_feedback: null,
  }
}

export const LAYERS: LayerMapInfo = {
  in_memory_layers: [{ kind: 'Open', lsn_start: '0/3000000', bytes: 3_145_728 }],
  historic_layers: [
    {
      kind: 'Image',
      layer_file_name: 'img',
      layer_file_size: 20_000_000,
      key_start: '000000000000000000000000000000000000',
      key_end: 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF',
      lsn_start: '0/14EE1A8',
      remote: false,
    },
    ...[1, 2].map((i) => ({
      kind: 'Delta' as const,
      layer_file_name: `l0-${i}`,
      layer_file_size: 1_000_000 * i,
      key_start: '000000000000000000000000000000000000',
      key_end: 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF',
      lsn_start: `0/${i}000000`,
      lsn_end: `0/${i + 1}000000`,
      l0: true,
      remote: false as const,
    })),
  ],
}

export interface SampleOptions {
  at?: number
  /** The /metrics totals of the pageserver that holds the tenant. */
  figures?: Figures
  /** Those of every other pageserver. */
  otherFigures?: Figures
  /** main's compute flush LSN, safekeeper flush/commit, pageserver last_record/disk_consistent. */
  main?: { compute: string; sk: string; last: string; disk: string }
  /** The holder does not answer, for this reason. */
  pageserverDown?: string
  /** The cluster's pageservers (default [1]) and the one holding the tenant (default the first). */
  pageservers?: number[]
  heldBy?: number
}

const psName = (id: number) => (id === 1 ? 'pageserver' : `pageserver ${id}`)

/** A sample as sampleCluster returns it, with main selected. */
export function dashboardSample(o: SampleOptions = {}): DashboardSample {
  const at = o.at ?? 1_700_000_000_000
  const main = o.main ?? { compute: '0/3000000', sk: '0/3000000', last: '0/2FFF000', disk: '0/2000000' }
  const started = at - 3_725_000
  const ids = o.pageservers ?? [1]
  const holder = o.heldBy ?? ids[0]
  const pageservers = ids.map((id) => {
    const name = psName(id)
    if (id !== holder)
      return {
        id,
        name,
        unreachable: null,
        tenants: [],
        metrics: parseMetrics(metricsText(o.otherFigures ?? ZERO, at)),
      }
    if (o.pageserverDown) return { id, name, unreachable: o.pageserverDown, tenants: [], metrics: [] }
    return {
      id,
      name,
      unreachable: null,
      tenants: [
        {
          tenant_id: TENANT,
          timelines: [
            timelineInfo(MAIN, { last: main.last, disk: main.disk }),
            timelineInfo(
              FEATURE,
              { last: '0/1800000', disk: '0/1800000' },
              { ancestor_timeline_id: MAIN, ancestor_lsn: '0/1800000', walreceiver_status: 'inactive' },
            ),
          ],
        },
      ],
      metrics: parseMetrics(metricsText(o.figures ?? ZERO, at)),
    }
  })
  return {
    at_ms: at,
    processes: [
      ...ids.map((id) => ({
        kind: 'pageserver' as const,
        name: psName(id),
        state: 'running' as const,
        pid: 4232 + 10 * id,
        ports: [`http ${9897 + id}`, `pg ${63999 + id}`],
        started_at_ms: started,
        last_log_line: null,
        unreachable: id === holder ? (o.pageserverDown ?? null) : null,
      })),
      {
        kind: 'safekeeper',
        name: 'safekeeper 1',
        state: 'running',
        pid: 4243,
        ports: ['http 7677', 'pg 5455'],
        started_at_ms: started,
        last_log_line: null,
        unreachable: null,
      },
      {
        kind: 'compute',
        name: 'compute main',
        state: 'running',
        pid: 4300,
        ports: ['pg 55432'],
        started_at_ms: at - 65_000,
        last_log_line: null,
        unreachable: null,
      },
    ],
    pageservers,
    tenant_pageservers: { [TENANT]: holder },
    figures_pageserver_id: holder,
    layers: o.pageserverDown ? null : { tenant_id: TENANT, timeline_id: MAIN, info: LAYERS },
    safekeepers: [
      {
        id: 1,
        unreachable: null,
        timelines: [skTimeline(MAIN, main.sk, main.sk), skTimeline(FEATURE, '0/1800000', '0/1800000')],
      },
    ],
    computes: [
      {
        name: 'main',
        tenant_id: TENANT,
        timeline_id: MAIN,
        lsn: null,
        unreachable: null,
        insert_lsn: main.compute,
        flush_lsn: main.compute,
      },
    ],
    branches: [
      { tenant_id: TENANT, timeline_id: MAIN, name: 'main' },
      { tenant_id: TENANT, timeline_id: FEATURE, name: 'feature' },
    ],
    // What sampleCluster counts: the holder is asked for its tenants, their timelines, /metrics and the
    // selected timeline's layers; every other pageserver for its tenants and /metrics.
    requests: {
      ...Object.fromEntries(ids.map((id) => [psName(id), id === holder ? 4 : 2])),
      'safekeeper 1': 1,
      'compute main': 1,
    },
  }
}
