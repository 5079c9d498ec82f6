import { describe, expect, it } from 'vitest'
import type { SafekeeperClient } from '../../src/control/safekeeper-client.js'
import { majorityOf, syncSafekeepers, termHistoryOf } from '../../src/control/sync-safekeepers.js'
import { ZenithError } from '../../src/lib/errors.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import type { SkTermEntry } from '../../src/safekeeper/api-types.js'

const T = 'a'.repeat(32)
const L = 'b'.repeat(32)

interface FakeState {
  term: number
  epoch: number
  flush: number
  down?: boolean
  missing?: boolean
  history?: { term: number; lsn: number }[]
  /** The term history it was handed as the election's outcome. */
  adopted?: SkTermEntry[]
  /** Peer recovery brings it to the start LSN once it adopted the outcome (default true). */
  recovers?: boolean
}

/** A safekeeper's HTTP API as the election sees it, over a state the test sets and reads. */
function fake(id: number, s: FakeState): SafekeeperClient {
  const fail = () => {
    if (s.down) throw new ZenithError(`safekeeper ${id} is not reachable`, { kind: 'unavailable' })
    if (s.missing) throw new ZenithError('no such timeline', { kind: 'not_found' })
  }
  return {
    id,
    async timeline() {
      fail()
      return {
        acceptor_state: { term: s.term, epoch: s.epoch, term_history: [] },
        flush_lsn: formatLsn(s.flush),
      }
    },
    async vote(_t: string, _l: string, term: number) {
      fail()
      const history = (s.history ?? []).map((e) => ({ term: e.term, lsn: formatLsn(e.lsn) }))
      const answer = { term: s.term, epoch: s.epoch, flush_lsn: formatLsn(s.flush), term_history: history }
      if (term <= s.term) return { vote_given: false, ...answer }
      s.term = term
      return { vote_given: true, ...answer, term }
    },
    async elected(_t: string, _l: string, term: number, history: SkTermEntry[]) {
      fail()
      expect(term).toBe(s.term)
      s.adopted = history
      if (s.recovers !== false) s.flush = Math.max(s.flush, parseLsn(history.at(-1)!.lsn))
      return {}
    },
  } as unknown as SafekeeperClient
}

const term3 = [
  { term: 1, lsn: 0x100 },
  { term: 3, lsn: 0x1800 },
]

describe('the election at a compute start', () => {
  it('needs a majority: 1 of 1, 2 of 3, 3 of 5', () => {
    expect([1, 3, 5].map(majorityOf)).toEqual([1, 2, 3])
  })

  it('starts at the newest WAL — the highest (epoch, flush) — and hands every voter the new history', async () => {
    const states: FakeState[] = [
      { term: 3, epoch: 3, flush: 0x3000, history: term3 },
      { term: 3, epoch: 3, flush: 0x2000, history: term3 },
      // More WAL, but of an older term: what term 3's election found is newer than any of it.
      {
        term: 2,
        epoch: 2,
        flush: 0x5000,
        history: [
          { term: 1, lsn: 0x100 },
          { term: 2, lsn: 0x1000 },
        ],
      },
    ]
    const el = await syncSafekeepers(
      states.map((s, i) => fake(i + 1, s)),
      T,
      L,
    )
    expect(el).toEqual({ term: 4, startLsn: 0x3000, history: term3, voters: [1, 2, 3], behind: [] })
    const outcome = [
      { term: 1, lsn: '0/100' },
      { term: 3, lsn: '0/1800' },
      { term: 4, lsn: '0/3000' },
    ]
    expect(termHistoryOf(el, 0x3000)).toEqual(outcome)
    expect(states.map((s) => s.term)).toEqual([4, 4, 4])
    // sk3 cuts its term-2 WAL where it parts from this history, then fetches the rest (timeline.ts).
    for (const s of states) expect(s.adopted).toEqual(outcome)
  })

  it('keeps a commit that only voters missing from the election had acknowledged with the donor', async () => {
    // Term 5: sk1 and sk2 acknowledged up to 0x4000; sk2 is down now, sk3 lagged behind.
    const h = [{ term: 5, lsn: 0x100 }]
    const states: FakeState[] = [
      { term: 5, epoch: 5, flush: 0x4000, history: h },
      { term: 5, epoch: 5, flush: 0x4000, history: h, down: true },
      { term: 5, epoch: 5, flush: 0x3000, history: h },
    ]
    const el = await syncSafekeepers(
      states.map((s, i) => fake(i + 1, s)),
      T,
      L,
    )
    // The majority-th flush of the voters would be 0x3000, below an acknowledged commit.
    expect(el).toMatchObject({ term: 6, startLsn: 0x4000, voters: [1, 3], behind: [] })
    expect(states[2].flush).toBe(0x4000)
  })

  it('compares flush LSNs within the epoch: a longer tail of an older epoch loses', async () => {
    const states: FakeState[] = [
      // Took term 4's history but never reached its start: its WAL is still all of term 3.
      { term: 4, epoch: 3, flush: 0x2000, history: [...term3, { term: 4, lsn: 0x2800 }] },
      { term: 4, epoch: 3, flush: 0x2800, history: term3 },
      { term: 2, epoch: 2, flush: 0x9000, history: [{ term: 2, lsn: 0x100 }] },
    ]
    const el = await syncSafekeepers(
      states.map((s, i) => fake(i + 1, s)),
      T,
      L,
    )
    expect(el).toMatchObject({ term: 5, startLsn: 0x2800, history: term3 })
  })

  it('waits for a majority to reach the start LSN, and says so when it does not', async () => {
    const h = [{ term: 1, lsn: 0x100 }]
    const lagging = (recovers: boolean): FakeState[] => [
      { term: 1, epoch: 1, flush: 0x4000, history: h },
      { term: 1, epoch: 1, flush: 0x1000, history: h, recovers },
      { term: 1, epoch: 1, flush: 0x1000, history: h, recovers: false },
    ]
    const el = await syncSafekeepers(
      lagging(true).map((s, i) => fake(i + 1, s)),
      T,
      L,
      500,
    )
    expect(el).toMatchObject({ startLsn: 0x4000, voters: [1, 2, 3], behind: [3] })
    await expect(
      syncSafekeepers(
        lagging(false).map((s, i) => fake(i + 1, s)),
        T,
        L,
        300,
      ),
    ).rejects.toMatchObject({
      kind: 'timeout',
      message: expect.stringMatching(/only 1 of the voters reached the start LSN 0\/4000 within 0.3 s/),
    })
  })

  it('goes on with a majority when one is down, and refuses without one, naming who to start', async () => {
    const ok = await syncSafekeepers(
      [
        fake(1, { term: 1, epoch: 1, flush: 0x100 }),
        fake(2, { term: 1, epoch: 1, flush: 0x100, down: true }),
        fake(3, { term: 1, epoch: 1, flush: 0x100 }),
      ],
      T,
      L,
    )
    expect(ok).toMatchObject({ term: 2, startLsn: 0x100, voters: [1, 3] })
    const refused = syncSafekeepers(
      [
        fake(1, { term: 1, epoch: 1, flush: 0x100 }),
        fake(2, { term: 1, epoch: 1, flush: 0x100, down: true }),
        fake(3, { term: 1, epoch: 1, flush: 0x100, down: true }),
      ],
      T,
      L,
    )
    await expect(refused).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/only 1 of 3 safekeepers voted for term 2/),
      hint: expect.stringMatching(/start safekeeper 2, 3/),
    })
  })

  it('has nothing to elect for a timeline no safekeeper holds yet', async () => {
    const fresh = [1, 2, 3].map((id) => fake(id, { term: 0, epoch: 0, flush: 0, missing: true }))
    expect(await syncSafekeepers(fresh, T, L)).toEqual({
      term: 1,
      startLsn: null,
      history: [],
      voters: [1, 2, 3],
      behind: [],
    })
  })
})
