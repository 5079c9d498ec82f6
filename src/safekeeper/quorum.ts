/**
 * The arithmetic of a safekeeper's quorum, apart from any I/O so that it can be tested on its own: whose
 * flush LSNs may be compared with ours, what commit_lsn a set of them proves, below which LSN no one can
 * need this safekeeper's WAL any more, which peer may hand over the WAL it lacks, and where a safekeeper's
 * WAL parts from the WAL of a term it joins.
 */
import type { Lsn } from '../postgres/lsn.js'
import type { TermEntry } from './control-file.js'

/** Where a safekeeper stands in the election: the term it voted for and the term of its last WAL. */
export interface TermPosition {
  term: number
  /** The term of the last entry of its term history (Neon's "epoch"). */
  lastLogTerm: number
}

/**
 * Flush LSNs count together for commit only when both safekeepers voted for the same term and hold that
 * term's WAL last: across terms the same LSN may name different WAL (one side may still be truncated).
 */
export function sameTerm(a: TermPosition, b: TermPosition): boolean {
  return a.term === b.term && a.lastLogTerm === b.lastLogTerm
}

export interface QuorumInput {
  /** This safekeeper's own flush LSN. */
  ownFlush: Lsn
  /** Flush LSNs of the peers of the same term that answered; the others count as having nothing. */
  peerFlushes: readonly Lsn[]
  /** How many safekeepers form the quorum, this one included. */
  members: number
  /** Where the current term's WAL begins. */
  termStartLsn: Lsn
}

/**
 * The commit LSN the flushes prove, or null when they prove nothing new: the majority-th highest flush,
 * capped at our own flush since a safekeeper serves only WAL it holds. As in Raft, WAL of an earlier
 * term is not committed by counting copies of it: the majority has to reach the current term's start.
 */
export function quorumCommitLsn(q: QuorumInput): Lsn | null {
  const flushes = [q.ownFlush, ...q.peerFlushes].sort((a, b) => b - a)
  const candidate = flushes[Math.floor(q.members / 2)]
  if (candidate === undefined || candidate < q.termStartLsn) return null
  return Math.min(candidate, q.ownFlush)
}

export interface RemovalInput {
  /**
   * What the pageserver has made durable: its remote_consistent_lsn (the standby status update's apply
   * LSN; disk_consistent_lsn when it has no remote storage), or null when no pageserver has reported: it
   * may still need everything.
   */
  pageserverDurable: Lsn | null
  /** Flush LSNs of the peers of the same term that answered. */
  peerFlushes: readonly Lsn[]
  /** How many peers there are in all. */
  peers: number
  commitLsn: Lsn
  flushLsn: Lsn
}

/**
 * WAL below the returned LSN is needed by no one, or null when that is not known. A peer that did not
 * answer, or answers for another term, might have to catch up from us: until it is heard from in our
 * term, nothing is removed.
 */
export function walRemovalHorizon(r: RemovalInput): Lsn | null {
  if (r.pageserverDurable === null || r.peerFlushes.length < r.peers) return null
  return Math.min(r.pageserverDurable, r.commitLsn, r.flushLsn, ...r.peerFlushes)
}

/**
 * The peer to fetch missing WAL from, or null: the most advanced one ahead of `ownEnd` in our position.
 * Both sides must hold WAL of the term they voted for (term = last log term): between a vote and the
 * term's compute, the election may still cut the tails a donor would hand over, and across terms the
 * same LSN may name different WAL, so there is no telling who should recover from whom.
 */
export function recoveryDonor<P extends TermPosition & { flushLsn: Lsn }>(
  own: TermPosition,
  ownEnd: Lsn,
  peers: readonly P[],
): P | null {
  if (own.term !== own.lastLogTerm) return null
  let best: P | null = null
  for (const p of peers) {
    if (sameTerm(p, own) && p.flushLsn > ownEnd && p.flushLsn > (best?.flushLsn ?? -1)) best = p
  }
  return best
}

/**
 * Where a safekeeper's WAL stops agreeing with the WAL a new term continues (Neon's startStreamingAt),
 * from the two term histories: a term has one compute, so WAL of the same term at the same LSN is the
 * same bytes, and the two agree up to the end of the last term both hold — on whichever side that term
 * ends first. `proposer` is the new term's history, ending with the new term itself; a safekeeper already
 * in that term agrees up to its own flush. The result is never above `ownFlush`.
 */
export function divergencePoint(
  own: readonly TermEntry[],
  ownFlush: Lsn,
  proposer: readonly TermEntry[],
): Lsn {
  let common = 0
  while (common < own.length && common < proposer.length && own[common].term === proposer[common].term)
    common++
  if (common === 0) return Math.min(ownFlush, proposer[0]?.lsn ?? ownFlush)
  if (common === proposer.length) return ownFlush
  const ownEnd = common < own.length ? own[common].lsn : ownFlush
  return Math.min(proposer[common].lsn, ownEnd, ownFlush)
}
