/**
 * The election every start of a writable compute runs against the timeline's safekeepers (Neon's
 * sync-safekeepers, done by the control plane because stock Postgres has no walproposer):
 *
 *   1. ask every safekeeper for the timeline; T = the highest term any of them has accepted + 1;
 *   2. vote for T on all of them: a voter stops pulling from the old compute, cuts a partial record at
 *      the end of its WAL and keeps T on disk — from then on the old compute reaches at most a minority
 *      and cannot commit;
 *   3. with a majority of votes, the start LSN L is the majority-th highest flush LSN among the voters
 *      of the newest term: a commit is acknowledged only once a majority has it, so every acknowledged
 *      commit is below L; voters with more (a tail no majority acknowledged) are truncated at L.
 *
 * A timeline that no safekeeper holds yet has nothing to elect: its WAL starts where the pageserver's
 * ends. The caller then waits until the pageserver has L, takes the basebackup at L and makes the new
 * compute the compute of term T on every safekeeper, with the term's history (the donor's terms below L,
 * then T at L): a safekeeper that missed the election and holds a tail of an older term beyond where its
 * history parts from that one cuts it there (Neon's truncation at the divergence point).
 *
 * Not built yet, so refused rather than guessed: bringing voters that lack WAL below L up to it from a
 * peer during the election, which fewer than a majority of voters in the newest term would need. A voter
 * behind L catches up after the start instead: the new compute does not have its missing WAL, so once it
 * has the compute of term T it fetches that WAL from a peer of term T (the safekeepers' peer recovery).
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import type { SkTermEntry, SkVoteResponse } from '../safekeeper/api-types.js'
import type { TermEntry } from '../safekeeper/control-file.js'
import type { SafekeeperClient } from './safekeeper-client.js'

export class ElectionError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'ElectionError'
}

export interface Election {
  term: number
  /** Where the new compute starts; null for a timeline no safekeeper holds yet. */
  startLsn: Lsn | null
  /**
   * The terms of the WAL below the start LSN, from the most advanced voter of the newest term (Neon's
   * donor): the new term's history is these, then the new term at the start LSN. Empty for a new timeline.
   */
  history: TermEntry[]
  /** The safekeepers whose vote counted, and those behind L (they cannot serve this term). */
  voters: number[]
  behind: number[]
}

/** The history of the elected term, as every safekeeper of it is to hold it: see Election.history. */
export function termHistoryOf(el: Election, startLsn: Lsn): SkTermEntry[] {
  return [...el.history, { term: el.term, lsn: startLsn }].map((e) => ({
    term: e.term,
    lsn: formatLsn(e.lsn),
  }))
}

export const majorityOf = (n: number): number => Math.floor(n / 2) + 1

export async function syncSafekeepers(
  safekeepers: readonly SafekeeperClient[],
  tenantId: string,
  timelineId: string,
): Promise<Election> {
  const need = majorityOf(safekeepers.length)
  const asked = await Promise.all(
    safekeepers.map(async (sk) => {
      try {
        return { sk, info: await sk.timeline(tenantId, timelineId), error: null }
      } catch (err) {
        return { sk, info: null, error: err as ZenithError }
      }
    }),
  )
  const holding = asked.filter((a) => a.info !== null)
  const missing = asked.filter((a) => a.error?.kind === 'not_found')
  if (holding.length === 0 && missing.length >= need) {
    return { term: 1, startLsn: null, history: [], voters: missing.map((a) => a.sk.id), behind: [] }
  }
  const down = asked.filter((a) => a.error && a.error.kind !== 'not_found').map((a) => a.sk.id)
  const term = Math.max(0, ...holding.map((a) => a.info!.acceptor_state.term)) + 1
  const votes: { sk: SafekeeperClient; vote: SkVoteResponse }[] = []
  for (const r of await Promise.all(
    holding.map(({ sk }) =>
      sk.vote(tenantId, timelineId, term).then(
        (vote) => ({ sk, vote }),
        () => null,
      ),
    ),
  )) {
    if (r?.vote.vote_given) votes.push(r)
  }
  if (votes.length < need) {
    throw new ElectionError(
      `only ${votes.length} of ${safekeepers.length} safekeepers voted for term ${term} of timeline ${timelineId}; a compute needs ${need}`,
      down.length > 0 ? { hint: `start safekeeper ${down.join(', ')} (\`zenith safekeeper start\`)` } : {},
    )
  }
  // Flush LSNs compare only within one term's WAL: the voters holding the newest term decide.
  const newest = Math.max(...votes.map((v) => v.vote.epoch))
  const top = votes.filter((v) => v.vote.epoch === newest)
  if (top.length < need) {
    throw new ElectionError(
      `only ${top.length} of the ${votes.length} voters of term ${term} hold WAL of term ${newest}; bringing the others up to it from a peer is not built yet`,
      {
        kind: 'external',
        hint: 'start the safekeepers that were down while the compute wrote, then start the compute again',
      },
    )
  }
  const flushes = top.map((v) => parseLsn(v.vote.flush_lsn)).sort((a, b) => b - a)
  // The majority-th highest is what a majority holds, so every acknowledged commit. A tail beyond it
  // that fewer voters hold was never acknowledged: it is cut, so no safekeeper keeps WAL the new compute
  // will not write.
  const startLsn = flushes[need - 1]
  const donor = top.reduce((a, b) => (parseLsn(b.vote.flush_lsn) > parseLsn(a.vote.flush_lsn) ? b : a))
  const history = donor.vote.term_history
    .map((e) => ({ term: e.term, lsn: parseLsn(e.lsn) }))
    .filter((e) => e.lsn <= startLsn)
  for (const v of top) {
    if (parseLsn(v.vote.flush_lsn) > startLsn)
      await v.sk.truncate(tenantId, timelineId, formatLsn(startLsn), term)
  }
  return {
    term,
    startLsn,
    history,
    voters: votes.map((v) => v.sk.id),
    behind: votes
      .filter((v) => v.vote.epoch !== newest || parseLsn(v.vote.flush_lsn) < startLsn)
      .map((v) => v.sk.id),
  }
}
