/**
 * What `zenith wal load` reports, in both of its modes (a compute driven through SQL, or synthetic WAL
 * served by zenith itself): the live progress line and the summary, as text and as the JSON object that
 * is the last line under --json. The field names are the issue's and stay stable for scripts.
 */
import { MiB } from '../lib/units.js'
import type { LagNow, LagSummary } from './ingest-lag.js'

export interface WalLoadReport {
  mode: 'compute' | 'synthetic'
  tenant_id: string
  timeline_id: string
  branch: string
  /** The target, one of the two; the other is null. */
  target_wal_mib_s: number | null
  target_tps: number | null
  duration_s: number
  wal_bytes: number
  achieved_wal_mib_s: number
  /** Committed transactions (synthetic: commit records written). */
  transactions: number
  tps: number
  /** From the client's send to the server's answer; null in synthetic mode, where nothing commits. */
  commit_latency_ms_p50: number | null
  commit_latency_ms_p99: number | null
  /** How far the pageserver's last_record_lsn was behind the end of WAL, over the run. */
  ingest_lag_bytes_p50: number
  ingest_lag_bytes_p99: number
  ingest_lag_bytes_max: number
  /** The same for the safekeeper furthest behind at each sample; null without safekeepers. */
  safekeeper_lag_bytes_p50: number | null
  safekeeper_lag_bytes_p99: number | null
  safekeeper_lag_bytes_max: number | null
  lag_samples: number
  /** Transactions (or sends) that failed, and the first failure's message. */
  errors: number
  first_error: string | null
}

/** One second of a running load. */
export interface WalLoadProgress {
  elapsed_s: number
  duration_s: number
  wal_mib_s: number
  tps: number
  commit_latency_ms_p50: number | null
  commit_latency_ms_p99: number | null
  lag: LagNow
  errors: number
}

export const mibPerSecond = (bytes: number, ms: number): number => (ms > 0 ? bytes / MiB / (ms / 1000) : 0)

/** Figures keep the digits that mean something: a report is read by people as well as scripts. */
export const round = (x: number, digits = 3): number => Number(x.toFixed(digits))

/** The lag fields of a report from the sampler's summary. */
export function lagFields(
  s: LagSummary,
): Pick<
  WalLoadReport,
  | 'ingest_lag_bytes_p50'
  | 'ingest_lag_bytes_p99'
  | 'ingest_lag_bytes_max'
  | 'safekeeper_lag_bytes_p50'
  | 'safekeeper_lag_bytes_p99'
  | 'safekeeper_lag_bytes_max'
  | 'lag_samples'
> {
  return {
    ingest_lag_bytes_p50: s.pageserver.p50,
    ingest_lag_bytes_p99: s.pageserver.p99,
    ingest_lag_bytes_max: s.pageserver.max,
    safekeeper_lag_bytes_p50: s.safekeepers?.p50 ?? null,
    safekeeper_lag_bytes_p99: s.safekeepers?.p99 ?? null,
    safekeeper_lag_bytes_max: s.safekeepers?.max ?? null,
    lag_samples: s.pageserver.samples,
  }
}

const kib = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(0)} KiB`)
const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} ms`)

export function progressLine(p: WalLoadProgress): string {
  const parts = [
    `${p.elapsed_s.toFixed(0)}/${p.duration_s.toFixed(0)} s`,
    `${p.wal_mib_s.toFixed(2)} MiB/s WAL`,
    `${p.tps.toFixed(0)} tps`,
  ]
  if (p.commit_latency_ms_p50 !== null) {
    parts.push(`commit p50 ${ms(p.commit_latency_ms_p50)} p99 ${ms(p.commit_latency_ms_p99)}`)
  }
  parts.push(`pageserver lag ${kib(p.lag.pageserver)}`)
  if (p.lag.safekeepers !== null) parts.push(`safekeeper lag ${kib(p.lag.safekeepers)}`)
  if (p.errors > 0) parts.push(`${p.errors} errors`)
  return parts.join(', ')
}

export function summaryText(r: WalLoadReport): string {
  const target =
    r.target_tps !== null ? `${r.target_tps} tps` : `${(r.target_wal_mib_s ?? 0).toFixed(2)} MiB/s`
  const lines = [
    `${r.mode === 'synthetic' ? 'synthetic WAL' : 'WAL load'} on branch ${r.branch} (${r.timeline_id}) for ${r.duration_s.toFixed(1)} s, target ${target}`,
    `  WAL        ${r.achieved_wal_mib_s.toFixed(2)} MiB/s, ${(r.wal_bytes / MiB).toFixed(1)} MiB in all`,
    `  commits    ${r.transactions} (${r.tps.toFixed(1)} tps)` +
      (r.commit_latency_ms_p50 === null
        ? ''
        : `, latency p50 ${ms(r.commit_latency_ms_p50)} p99 ${ms(r.commit_latency_ms_p99)}`),
    `  pageserver lag p50 ${kib(r.ingest_lag_bytes_p50)}, p99 ${kib(r.ingest_lag_bytes_p99)}, max ${kib(r.ingest_lag_bytes_max)} (${r.lag_samples} samples)`,
  ]
  if (r.safekeeper_lag_bytes_p50 !== null) {
    lines.push(
      `  safekeeper lag p50 ${kib(r.safekeeper_lag_bytes_p50)}, p99 ${kib(r.safekeeper_lag_bytes_p99)}, max ${kib(r.safekeeper_lag_bytes_max)} (the furthest behind)`,
    )
  }
  lines.push(`  errors     ${r.errors}${r.first_error ? `, the first: ${r.first_error}` : ''}`)
  return lines.join('\n')
}
