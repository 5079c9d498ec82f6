import { describe, expect, it } from 'vitest'
import type { SafekeeperClient } from '../../src/control/safekeeper-client.js'
import { majorityOf, syncSafekeepers, termHistoryOf } from '../../src/control/sync-safekeepers.js'
import { ZenithError } from '../../src/lib/errors.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'

const T = 'a'.repeat(32)
const L = 'b'.repeat(32)

interface FakeState {
  term: number
  epoch: number
  flush: number
  truncatedAt?: number
  down?: boolean
  missing?: boolean
  history?: { term: number; lsn: number }[]
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
      if (term <= s.term)
        return {
          vote_given: false,
          term: s.term,
          epoch: s.epoch,
          flush_lsn: formatLsn(s.flush),
          term_history: [],
        }
      s.term = term
      return {
        vote_given: true,
        term,
        epoch: s.epoch,
        flush_lsn: formatLsn(s.flush),
        term_history: (s.history ?? []).map((e) => ({ term: e.term, lsn: formatLsn(e.lsn) })),
      }
    },
    async truncate(_t: string, _l: string, lsn: string, term: number) {
      expect(term).toBe(s.term)
      s.truncatedAt = parseLsn(lsn)
      s.flush = s.truncatedAt
      return {}
    },
  } as unknown as SafekeeperClient
}

describe('the election at a compute start', () => {
  it('needs a majority: 1 of 1, 2 of 3, 3 of 5', () => {
    expect([1, 3, 5].map(majorityOf)).toEqual([1, 2, 3])
  })

  it('elects a new term at the majority-th flush of the newest term and cuts longer tails there', async () => {
    const term3 = [
      { term: 1, lsn: 0x100 },
      { term: 3, lsn: 0x1800 },
    ]
    const states: FakeState[] = [
      { term: 3, epoch: 3, flush: 0x3000, history: term3 },
      { term: 3, epoch: 3, flush: 0x2000, history: term3 },
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
    // 0x3000 is on one safekeeper only: never acknowledged by a majority, so the start is 0x2000.
    expect(el).toEqual({ term: 4, startLsn: 0x2000, history: term3, voters: [1, 2, 3], behind: [3] })
    // Every safekeeper of term 4 is to hold this history; sk3 will cut its term-2 WAL from 0x1000 on.
    expect(termHistoryOf(el, 0x2000)).toEqual([
      { term: 1, lsn: '0/100' },
      { term: 3, lsn: '0/1800' },
      { term: 4, lsn: '0/2000' },
    ])
    expect(states.map((s) => s.term)).toEqual([4, 4, 4])
    expect(states[0].truncatedAt).toBe(0x2000)
    expect(states[1].truncatedAt).toBeUndefined()
    // A safekeeper of an older term is not truncated by flush LSNs of another term's WAL.
    expect(states[2].truncatedAt).toBeUndefined()
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
