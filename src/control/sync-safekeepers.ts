/**
 * The election every start of a writable compute runs against the timeline's safekeepers (Neon's
 * sync-safekeepers, done by the control plane because stock Postgres has no walproposer):
 *
 *   1. ask every safekeeper for the timeline; T = the highest term any of them has accepted + 1;
 *   2. vote for T on all of them: a voter stops pulling from the old compute, cuts a partial record at
 *      the end of its WAL and keeps T on disk — from then on the old compute reaches at most a minority
 *      and cannot commit;
 *   3. with a majority of votes, the donor is the voter with the newest WAL, the highest (last log term,
 *      flush LSN), and the start LSN L is its flush LSN. An acknowledged commit is on a majority, so on
 *      at least one voter; WAL of one term is the same bytes wherever it is, and a newer term continues
 *      only what its own election found, so the donor holds every acknowledged commit. Its tail that no
 *      majority acknowledged is kept as well: no client was told either way, and the new compute starts
 *      after it (Raft's rule; taking less than the most, say the majority-th flush, loses a commit that
 *      the voters missing from the election had acknowledged);
 *   4. every voter adopts T's history (the donor's terms up to L, then T at L): it cuts a tail that parts
 *      from that history (Neon's truncation at the divergence point) and fetches what it lacks up to L
 *      from the donor by peer recovery; once a majority holds L, L is committed.
 *
 * A timeline that no safekeeper holds yet has nothing to elect: its WAL starts where the pageserver's
 * ends. The caller then waits until the pageserver has L, takes the basebackup at L and makes the new
 * compute the compute of term T on every safekeeper, with the same history, so that one that missed the
 * election cuts its divergent tail then.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import type { SkTermEntry, SkVoteResponse } from '../safekeeper/api-types.js'
import type { TermEntry } from '../safekeeper/control-file.js'
import { waitFor } from './process.js'
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
  /** The safekeepers whose vote counted, and those of them still behind L when the election ended. */
  voters: number[]
  behind: number[]
}

/** The history of the elected term, as every safekeeper of it is to hold it: see Election.history. */
export function termHistoryOf(el: Pick<Election, 'term' | 'history'>, startLsn: Lsn): SkTermEntry[] {
  return [...el.history, { term: el.term, lsn: startLsn }].map((e) => ({
    term: e.term,
    lsn: formatLsn(e.lsn),
  }))
}

export const majorityOf = (n: number): number => Math.floor(n / 2) + 1

/** How long the voters behind the start LSN get to fetch it from the donor. */
const CATCH_UP_MS = 30_000

export async function syncSafekeepers(
  safekeepers: readonly SafekeeperClient[],
  tenantId: string,
  timelineId: string,
  catchUpMs = CATCH_UP_MS,
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
  const donor = votes.reduce((a, b) => (newer(b.vote, a.vote) ? b : a))
  const startLsn = parseLsn(donor.vote.flush_lsn)
  const history = donor.vote.term_history
    .map((e) => ({ term: e.term, lsn: parseLsn(e.lsn) }))
    .filter((e) => e.lsn <= startLsn)
  const outcome = termHistoryOf({ term, history }, startLsn)
  const adopted: SafekeeperClient[] = []
  const refusals: string[] = []
  await Promise.all(
    votes.map(({ sk }) =>
      sk.elected(tenantId, timelineId, term, outcome).then(
        () => adopted.push(sk),
        (err: Error) => refusals.push(`safekeeper ${sk.id}: ${err.message}`),
      ),
    ),
  )
  if (adopted.length < need) {
    throw new ElectionError(
      `only ${adopted.length} of the ${votes.length} voters of term ${term} took its history: ${refusals.join('; ')}`,
    )
  }
  const reached = await waitForStart(adopted, tenantId, timelineId, startLsn, need, catchUpMs)
  return {
    term,
    startLsn,
    history,
    voters: votes.map((v) => v.sk.id).sort((a, b) => a - b),
    behind: adopted
      .filter((sk) => !reached.includes(sk.id))
      .map((sk) => sk.id)
      .sort((a, b) => a - b),
  }
}

/** Newer WAL: of a later last log term, or of the same one and longer. */
const newer = (a: SkVoteResponse, b: SkVoteResponse): boolean =>
  a.epoch !== b.epoch ? a.epoch > b.epoch : parseLsn(a.flush_lsn) > parseLsn(b.flush_lsn)

/**
 * Waits until `need` of the voters hold WAL up to the start LSN (peer recovery brings them there);
 * resolves with those that do.
 */
async function waitForStart(
  voters: readonly SafekeeperClient[],
  tenantId: string,
  timelineId: string,
  startLsn: Lsn,
  need: number,
  timeoutMs: number,
): Promise<number[]> {
  let reached: number[] = []
  const ok = await waitFor(async () => {
    const flushes = await Promise.all(
      voters.map((sk) =>
        sk.timeline(tenantId, timelineId).then(
          (t) => ({ id: sk.id, flush: parseLsn(t.flush_lsn) }),
          () => ({ id: sk.id, flush: -1 }),
        ),
      ),
    )
    reached = flushes.filter((f) => f.flush >= startLsn).map((f) => f.id)
    return reached.length >= need
  }, timeoutMs)
  if (!ok) {
    throw new ElectionError(
      `only ${reached.length} of the voters reached the start LSN ${formatLsn(startLsn)} within ${timeoutMs / 1000} s; a compute needs ${need}`,
      { kind: 'timeout', hint: "the safekeepers' logs tell how their peer recovery went" },
    )
  }
  return reached
}

/**
 * The elected term's safekeepers pull from the compute at `connstr` (a new timeline is created on them
 * first, at `startLsn`): how many took it, and why the others did not. A minority is the caller's to refuse.
 */
export async function adoptCompute(
  clients: readonly SafekeeperClient[],
  tenantId: string,
  timelineId: string,
  el: Election,
  compute: { connstr: string; systemId: string; startLsn: string },
): Promise<{ accepted: number; failures: string[] }> {
  let accepted = 0
  const failures: string[] = []
  for (const sk of clients) {
    try {
      if (el.startLsn === null) {
        await sk.createTimeline({
          tenant_id: tenantId,
          timeline_id: timelineId,
          system_id: compute.systemId,
          start_lsn: compute.startLsn,
        })
      }
      await sk.setCompute(
        tenantId,
        timelineId,
        compute.connstr,
        el.term,
        termHistoryOf(el, parseLsn(compute.startLsn)),
      )
      accepted++
    } catch (err) {
      failures.push(`safekeeper ${sk.id}: ${(err as Error).message}`)
    }
  }
  return { accepted, failures }
}
