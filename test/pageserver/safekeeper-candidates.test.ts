import { describe, expect, it } from 'vitest'
import { SafekeeperCandidates } from '../../src/pageserver/safekeeper-candidates.js'

const SKS = [1, 2, 3].map((id) => ({ id, pg: `127.0.0.1:${5454 + id}`, http: `127.0.0.1:${7676 + id}` }))
const RULES = { connectTimeoutMs: 10_000, laggingWalTimeoutMs: 10_000, maxLsnWalLag: 1 << 30 }

function candidates() {
  let now = 1_000_000
  const c = new SafekeeperCandidates(SKS, 'a'.repeat(32), 'b'.repeat(32), () => now)
  return { c, advance: (ms: number) => (now += ms), now: () => now }
}

describe('the connection manager', () => {
  it('picks the safekeeper with the highest commit_lsn among those that answer', () => {
    const { c, advance } = candidates()
    expect(c.best()).toBeNull()
    c.heard(1, { commitLsn: 100, term: 1 })
    c.heard(2, { commitLsn: 300, term: 1 })
    c.heard(3, { commitLsn: 0, term: 1 })
    expect(c.best()?.id).toBe(2)
    expect(c.best(2)?.id).toBe(1)
    c.lost(2)
    expect(c.best()?.id).toBe(1)
    // An answer older than two seconds no longer counts.
    advance(2500)
    expect(c.best()).toBeNull()
  })

  it('cools a failed safekeeper down longer each time, and forgets once WAL arrives from it', () => {
    const { c, advance } = candidates()
    const hear = () => {
      c.heard(1, { commitLsn: 500, term: 1 })
      c.heard(2, { commitLsn: 100, term: 1 })
    }
    hear()
    c.failed(1)
    expect(c.best()?.id).toBe(2)
    advance(100)
    hear()
    expect(c.best()?.id).toBe(1)
    c.failed(1)
    c.failed(1)
    advance(200)
    hear()
    // 0.1 s × 1.5²: still cooling down after 0.2 s.
    expect(c.best()?.id).toBe(2)
    advance(60)
    hear()
    expect(c.best()?.id).toBe(1)
    for (let i = 0; i < 20; i++) c.failed(1)
    expect(c.all.find((s) => s.id === 1)!.cooldownUntilMs).toBeLessThanOrEqual(1_000_000 + 360 + 15_000)
    c.gotWal(1)
    expect(c.best()?.id).toBe(1)
  })

  it('switches on silence, on no new WAL while another has more, and on a large lag', () => {
    const { c, advance, now } = candidates()
    c.heard(1, { commitLsn: 1000, term: 1 })
    c.heard(2, { commitLsn: 1000, term: 1 })
    const p = { id: 1, received: 1000, lastMessageMs: now(), lastWalMs: now() }
    expect(c.switchReason(p, RULES)).toBeNull()
    advance(10_001)
    c.heard(2, { commitLsn: 1000, term: 1 })
    expect(c.switchReason(p, RULES)).toBe('NoKeepAlives')
    p.lastMessageMs = now()
    // No new WAL for lagging_wal_timeout, but nobody has more: stay.
    expect(c.switchReason(p, RULES)).toBeNull()
    c.heard(2, { commitLsn: 2000, term: 1 })
    expect(c.switchReason(p, RULES)).toBe('NoWalTimeout')
    p.lastWalMs = now()
    expect(c.switchReason(p, RULES)).toBeNull()
    c.heard(2, { commitLsn: 1000 + (1 << 30), term: 1 })
    expect(c.switchReason(p, RULES)).toBe('LaggingWal')
  })
})
