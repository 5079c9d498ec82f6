/** The series the pageserver exposes at GET /metrics. */
import { PAGE_SIZE } from '../engine/page-cache.js'
import type { Repository } from '../engine/repository.js'
import type { TaskKindStats } from '../engine/task-manager.js'
import type { Timeline } from '../engine/timeline.js'
import { CollectedCounter, Counter, Gauge, Histogram, MetricsRegistry } from '../lib/metrics.js'
import { processMetrics } from '../lib/process-metrics.js'

/** GetPage latency buckets, seconds: a cached page takes microseconds, a cold one a disk read. */
const GETPAGE_BUCKETS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1]

export class PageserverMetrics {
  readonly registry = new MetricsRegistry()
  readonly walIngestBytes = this.registry.add(
    new Counter('pageserver_wal_ingest_bytes_total', 'WAL bytes received and ingested by the WAL receivers'),
  )
  readonly walIngestRecords = this.registry.add(
    new Counter('pageserver_wal_ingest_records_total', 'WAL records ingested by the WAL receivers'),
  )
  readonly getPageRequests = this.registry.add(
    new Counter('pageserver_getpage_requests_total', 'page service GetPage@LSN requests answered'),
  )
  readonly getPageSeconds = this.registry.add(
    new Histogram('pageserver_getpage_seconds', 'time to answer a GetPage@LSN request', GETPAGE_BUCKETS),
  )
  readonly smgrRequests = this.registry.add(
    new Counter('pageserver_smgr_requests_total', 'page service requests by kind'),
  )
  readonly basebackups = this.registry.add(
    new Counter('pageserver_basebackup_requests_total', 'basebackups and fullbackups streamed'),
  )

  constructor(source: { repo: Repository }) {
    this.registry.add(processMetrics())
    const timelines = (): Timeline[] => source.repo.tenants().flatMap((t) => t.timelines())
    const perTimeline = (f: (tl: Timeline) => number) => () =>
      timelines().map((tl) => ({
        labels: { tenant_id: tl.tenantId, timeline_id: tl.timelineId },
        value: f(tl),
      }))
    const layerSum = (what: 'count' | 'bytes') => () => {
      const sums = new Map<string, number>()
      for (const tl of timelines()) {
        for (const l of tl.layerInfo()) {
          const kind = l.kind === 'delta' && l.l0 ? 'l0_delta' : l.kind
          sums.set(kind, (sums.get(kind) ?? 0) + (what === 'count' ? 1 : l.bytes))
        }
      }
      return [...sums].map(([kind, value]) => ({ labels: { kind }, value }))
    }
    this.registry.add(
      new Gauge(
        'pageserver_layers',
        'layers by kind (open, frozen, l0_delta, delta, image)',
        layerSum('count'),
      ),
    )
    this.registry.add(new Gauge('pageserver_layer_bytes', 'bytes of layers by kind', layerSum('bytes')))
    this.registry.add(
      new Gauge('pageserver_open_layer_bytes', 'bytes held by open in-memory layers', () => [
        { value: timelines().reduce((n, tl) => n + tl.openLayerBytes, 0) },
      ]),
    )
    this.registry.add(
      new Gauge('pageserver_page_cache_size_bytes', 'bytes of the page cache', () => [
        { value: source.repo.pageCache.slots * PAGE_SIZE },
      ]),
    )
    this.registry.add(
      new Gauge('pageserver_memory_budget_bytes', 'the budget of all open in-memory layers together', () => [
        { value: source.repo.memory.budgetBytes },
      ]),
    )
    const cache = () => source.repo.pageCache.stats()
    this.registry.add(
      new CollectedCounter('pageserver_page_cache_hits_total', 'page cache reads found in the cache', () => [
        { value: cache().hits },
      ]),
    )
    this.registry.add(
      new CollectedCounter(
        'pageserver_page_cache_misses_total',
        'page cache reads that loaded the block',
        () => [{ value: cache().misses }],
      ),
    )
    const byKind =
      (f: (k: TaskKindStats) => number | undefined) => (): { labels: { kind: string }; value: number }[] =>
        source.repo.tasks.kindStats().flatMap((k) => {
          const value = f(k)
          return value === undefined ? [] : [{ labels: { kind: k.kind }, value }]
        })
    this.registry.add(
      new Gauge(
        'pageserver_background_tasks_running',
        'background task runs in progress, by kind',
        byKind((k) => k.running),
      ),
    )
    this.registry.add(
      new CollectedCounter(
        'pageserver_background_task_runs_total',
        'background task runs, by kind',
        byKind((k) => k.runs),
      ),
    )
    this.registry.add(
      new CollectedCounter(
        'pageserver_background_task_failures_total',
        'failed background task runs, by kind',
        byKind((k) => k.failures),
      ),
    )
    this.registry.add(
      new Gauge(
        'pageserver_background_task_last_duration_seconds',
        'how long the last finished run of each kind took',
        byKind((k) => (k.lastDurationMs === undefined ? undefined : k.lastDurationMs / 1000)),
      ),
    )
    this.registry.add(
      new Gauge(
        'pageserver_background_task_last_run_timestamp_seconds',
        'when the last run of each kind started, seconds since the Unix epoch',
        byKind((k) => (k.lastRunAt === undefined ? undefined : k.lastRunAt / 1000)),
      ),
    )
    this.registry.add(
      new Gauge(
        'pageserver_last_record_lsn',
        'last_record_lsn per timeline',
        perTimeline((tl) => tl.lastRecordLsn),
      ),
    )
    this.registry.add(
      new Gauge(
        'pageserver_disk_consistent_lsn',
        'disk_consistent_lsn per timeline',
        perTimeline((tl) => tl.diskConsistentLsn),
      ),
    )
  }

  render(): string {
    return this.registry.render()
  }
}
