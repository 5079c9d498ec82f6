/**
 * The quorum arithmetic on its own: which peers count, the commit LSN their flushes prove, the WAL
 * removal horizon, and which peer may donate missing WAL.
 */
import { describe, expect, it } from 'vitest'
import {
  divergencePoint,
  quorumCommitLsn,
  recoveryDonor,
  sameTerm,
  walRemovalHorizon,
} from '../../src/safekeeper/quorum.js'

describe('sameTerm', () => {
  it('needs the same voted term and the same last log term', () => {
    expect(sameTerm({ term: 3, lastLogTerm: 3 }, { term: 3, lastLogTerm: 3 })).toBe(true)
    expect(sameTerm({ term: 3, lastLogTerm: 3 }, { term: 4, lastLogTerm: 3 })).toBe(false)
    // Voted for the same term, but one has not received WAL of it yet: its LSNs may be of another history.
    expect(sameTerm({ term: 3, lastLogTerm: 3 }, { term: 3, lastLogTerm: 2 })).toBe(false)
  })
})

describe('quorumCommitLsn', () => {
  const q = { members: 3, termStartLsn: 100 }

  it('is the majority-th highest flush, capped at our own', () => {
    expect(quorumCommitLsn({ ...q, ownFlush: 500, peerFlushes: [300, 400] })).toBe(400)
    expect(quorumCommitLsn({ ...q, ownFlush: 200, peerFlushes: [300, 400] })).toBe(200)
    expect(quorumCommitLsn({ ...q, members: 5, ownFlush: 500, peerFlushes: [300, 400, 450, 200] })).toBe(400)
  })

  it('proves nothing without a majority', () => {
    expect(quorumCommitLsn({ ...q, ownFlush: 500, peerFlushes: [] })).toBeNull()
    expect(quorumCommitLsn({ ...q, members: 5, ownFlush: 500, peerFlushes: [400] })).toBeNull()
  })

  it('needs the majority to reach the start of the current term', () => {
    expect(quorumCommitLsn({ ...q, termStartLsn: 450, ownFlush: 500, peerFlushes: [300, 400] })).toBeNull()
    expect(quorumCommitLsn({ ...q, termStartLsn: 400, ownFlush: 500, peerFlushes: [300, 400] })).toBe(400)
  })

  it('makes a lone safekeeper its own quorum', () => {
    expect(quorumCommitLsn({ ...q, members: 1, ownFlush: 500, peerFlushes: [] })).toBe(500)
  })
})

describe('walRemovalHorizon', () => {
  const r = { pageserverDurable: 300, peerFlushes: [400, 500], peers: 2, commitLsn: 450, flushLsn: 600 }

  it('is the lowest of what the pageserver, every peer and the quorum have', () => {
    expect(walRemovalHorizon(r)).toBe(300)
    expect(walRemovalHorizon({ ...r, pageserverDurable: 1000 })).toBe(400)
    expect(walRemovalHorizon({ ...r, pageserverDurable: 1000, peerFlushes: [700, 800] })).toBe(450)
    expect(
      walRemovalHorizon({ ...r, pageserverDurable: 1000, peerFlushes: [700, 800], commitLsn: 900 }),
    ).toBe(600)
  })

  it('removes nothing without pageserver feedback', () => {
    expect(walRemovalHorizon({ ...r, pageserverDurable: null })).toBeNull()
  })

  it('removes nothing while a peer has not been heard from in our term', () => {
    expect(walRemovalHorizon({ ...r, peerFlushes: [500] })).toBeNull()
    expect(walRemovalHorizon({ ...r, peers: 0, peerFlushes: [] })).toBe(300)
  })
})

describe('recoveryDonor', () => {
  const own = { term: 3, lastLogTerm: 3 }
  const peer = (name: string, term: number, lastLogTerm: number, flushLsn: number) => ({
    name,
    term,
    lastLogTerm,
    flushLsn,
  })

  it('is the most advanced peer of our term ahead of us', () => {
    const peers = [peer('a', 3, 3, 500), peer('b', 3, 3, 700), peer('c', 3, 3, 100)]
    expect(recoveryDonor(own, 200, peers)?.name).toBe('b')
    expect(recoveryDonor(own, 700, peers)).toBeNull()
  })

  it('is never a peer of another term or epoch, however far ahead', () => {
    expect(recoveryDonor(own, 200, [peer('a', 4, 4, 900), peer('b', 3, 2, 900)])).toBeNull()
    expect(recoveryDonor(own, 200, [peer('a', 4, 4, 900), peer('b', 3, 3, 300)])?.name).toBe('b')
  })

  it('is no one between a vote and the compute of the term, when the election may still cut WAL', () => {
    expect(recoveryDonor({ term: 4, lastLogTerm: 3 }, 200, [peer('a', 4, 3, 900)])).toBeNull()
  })
})

describe('divergencePoint', () => {
  const t = (...pairs: [number, number][]) => pairs.map(([term, lsn]) => ({ term, lsn }))
  // Term 1 from 0x100; term 2 elected at 0x800 without the safekeeper, term 3 at 0x2000.
  const proposer = t([1, 0x100], [2, 0x800], [3, 0x2000])

  it('cuts a tail of an older term at the start of the next term the proposer has (test_wal_truncation)', () => {
    expect(divergencePoint(t([1, 0x100]), 0x1500, proposer)).toBe(0x800)
  })

  it('cuts WAL of a term the proposer does not have where that term began', () => {
    // Term 2 went to another compute on this safekeeper, from 0x700: the proposer's term 2 is not it.
    expect(divergencePoint(t([1, 0x100], [4, 0x700]), 0x1500, t([1, 0x100], [5, 0x800], [6, 0x900]))).toBe(
      0x700,
    )
  })

  it('keeps WAL that is all of a common term, and is never above the flush', () => {
    expect(divergencePoint(t([1, 0x100]), 0x600, proposer)).toBe(0x600)
    expect(divergencePoint(t([1, 0x100], [2, 0x800]), 0x1000, proposer)).toBe(0x1000)
    expect(divergencePoint(t([1, 0x100], [2, 0x800]), 0x2500, proposer)).toBe(0x2000)
  })

  it('keeps everything of a safekeeper already in the proposer’s term, or with no WAL yet', () => {
    expect(divergencePoint(proposer, 0x3000, proposer)).toBe(0x3000)
    expect(divergencePoint([], 0x100, proposer)).toBe(0x100)
  })
})
