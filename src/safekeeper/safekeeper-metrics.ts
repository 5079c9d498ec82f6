/**
 * A safekeeper's Prometheus series, for all its timelines together: counters live here rather than on
 * timelines so that they never go down when a timeline is closed or deleted.
 */
import { Counter, Histogram, MetricsRegistry } from '../lib/metrics.js'
import { processMetrics } from '../lib/process-metrics.js'

/** Seconds; a group commit on a local SSD takes well under a millisecond, a busy disk tens. */
const FLUSH_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

export class SafekeeperMetrics {
  private readonly registry = new MetricsRegistry()
  readonly walBytesIn = this.registry.add(
    new Counter(
      'safekeeper_wal_bytes_in_total',
      'WAL bytes received from computes and, in recovery, from peers',
    ),
  )
  readonly walBytesOut = this.registry.add(
    new Counter('safekeeper_wal_bytes_out_total', 'WAL bytes sent to the pageserver and peers'),
  )
  readonly fsyncs = this.registry.add(
    new Counter(
      'safekeeper_fsyncs_total',
      'fsyncs of received WAL: its segments and, for a new segment, their directory',
    ),
  )
  readonly flushSeconds = this.registry.add(
    new Histogram(
      'safekeeper_wal_flush_seconds',
      'time to make received WAL durable: all fsyncs of one group commit',
      FLUSH_BUCKETS,
    ),
  )
  readonly startReplications = this.registry.add(
    new Counter(
      'safekeeper_start_replication_total',
      'START_REPLICATION requests served to the pageserver and peers',
    ),
  )
  readonly acksDelayed = this.registry.add(
    new Counter('safekeeper_acks_delayed_total', 'acks to computes held back because the pageserver lagged'),
  )

  constructor() {
    this.registry.add(processMetrics())
  }

  render(): string {
    return this.registry.render()
  }
}
