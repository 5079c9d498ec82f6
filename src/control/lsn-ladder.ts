/**
 * The LSN ladder of one timeline: where its WAL is at each step from the compute down to the pageserver's
 * durable state, and how far each step is behind the compute, in bytes and in seconds. `timeline show`,
 * `pg list` and the dashboard all draw this one ladder.
 *
 * Bytes are measured against the compute's flush LSN (the WAL that exists), or, when no compute runs,
 * against the highest LSN on the ladder. Seconds come from the process that holds the step: each measures
 * against the end of WAL its own source reported (LsnClock), so no clocks are compared across processes.
 */
import type { TimelineInfo } from '../pageserver/api-types.js'
import { type Lsn, parseLsn } from '../postgres/lsn.js'
import type { TimelineOnSafekeepers } from './safekeeper-view.js'

export type RungName =
  | 'compute_insert'
  | 'compute_flush'
  | 'safekeeper_flush'
  | 'commit'
  | 'last_record'
  | 'disk_consistent'
  | 'remote_consistent'
  | 'gc_cutoff'

export interface LadderRung {
  name: RungName
  /** Which safekeeper, for `safekeeper_flush`. */
  safekeeper_id?: number
  lsn: string | null
  /** Bytes behind the top of the ladder; null when this step or the top is not known. */
  lag_bytes: number | null
  /** Seconds behind, as the process holding the step measures it; null when it does not know. */
  lag_seconds: number | null
}

export interface LadderInput {
  compute: { insert_lsn: string | null; flush_lsn: string | null } | null
  safekeepers: readonly {
    id: number
    flush_lsn: string | null
    lag_seconds?: { flush: number | null; commit: number | null } | null
  }[]
  /** The quorum's commit_lsn (commitHolderOf), and its seconds as the safekeeper holding it measures them. */
  commit: { lsn: string | null; lag_seconds: number | null } | null
  pageserver: {
    last_record_lsn: string
    disk_consistent_lsn: string
    remote_consistent_lsn: string
    latest_gc_cutoff_lsn: string
    lag_seconds?: {
      last_record: number | null
      disk_consistent: number | null
      remote_consistent: number | null
    } | null
  } | null
}

export function lsnLadder(input: LadderInput): LadderRung[] {
  const rungs: Omit<LadderRung, 'lag_bytes'>[] = []
  const { compute, pageserver: ps } = input
  if (compute) {
    rungs.push({ name: 'compute_insert', lsn: compute.insert_lsn, lag_seconds: 0 })
    rungs.push({ name: 'compute_flush', lsn: compute.flush_lsn, lag_seconds: 0 })
  }
  for (const sk of input.safekeepers)
    rungs.push({
      name: 'safekeeper_flush',
      safekeeper_id: sk.id,
      lsn: sk.flush_lsn,
      lag_seconds: sk.lag_seconds?.flush ?? null,
    })
  if (input.commit)
    rungs.push({ name: 'commit', lsn: input.commit.lsn, lag_seconds: input.commit.lag_seconds })
  if (ps) {
    const s = ps.lag_seconds
    rungs.push({ name: 'last_record', lsn: ps.last_record_lsn, lag_seconds: s?.last_record ?? null })
    rungs.push({
      name: 'disk_consistent',
      lsn: ps.disk_consistent_lsn,
      lag_seconds: s?.disk_consistent ?? null,
    })
    rungs.push({
      name: 'remote_consistent',
      lsn: ps.remote_consistent_lsn,
      lag_seconds: s?.remote_consistent ?? null,
    })
    // The GC cutoff is how far back reads may go, not a lag.
    rungs.push({ name: 'gc_cutoff', lsn: ps.latest_gc_cutoff_lsn, lag_seconds: null })
  }
  const known = (r: { lsn: string | null }) => r.lsn !== null
  const top: Lsn | null = compute?.flush_lsn
    ? parseLsn(compute.flush_lsn)
    : rungs.some(known)
      ? Math.max(...rungs.filter(known).map((r) => parseLsn(r.lsn!)))
      : null
  return rungs.map((r) => ({
    ...r,
    lag_bytes:
      r.name === 'gc_cutoff' || r.name === 'compute_insert' || r.lsn === null || top === null
        ? null
        : top - parseLsn(r.lsn),
  }))
}

/**
 * The ladder from what the CLI gathered of one timeline: its running writer's WAL positions (none when no
 * compute writes it), what the safekeepers hold (timelineOnSafekeepers: an unreachable one has null
 * rungs) and the pageserver's timeline (null when it did not answer).
 */
export function timelineLadder(
  compute: LadderInput['compute'],
  onSafekeepers: TimelineOnSafekeepers,
  pageserver: TimelineInfo | null,
): LadderRung[] {
  return lsnLadder({
    compute,
    safekeepers: onSafekeepers.safekeepers,
    commit:
      onSafekeepers.safekeepers.length > 0
        ? { lsn: onSafekeepers.commit_lsn, lag_seconds: onSafekeepers.commit_lag_seconds }
        : null,
    pageserver,
  })
}
