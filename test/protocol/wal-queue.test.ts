import { describe, expect, it } from 'vitest'
import { WalQueue } from '../../src/protocol/wal-queue.js'

describe('WalQueue', () => {
  it('reads across chunks one chunk at a time and lets go of chunks the receiver has', () => {
    const q = new WalQueue(1000)
    q.push(Buffer.alloc(100, 1))
    q.push(Buffer.alloc(50, 2))
    expect([q.startLsn, q.endLsn, q.heldBytes]).toEqual([1000, 1150, 150])
    expect(q.read(1090, 40)).toEqual(Buffer.alloc(10, 1))
    expect(q.read(1100, 40)).toEqual(Buffer.alloc(40, 2))
    // A write inside the first chunk keeps it: the receiver may resume below that write.
    q.release(1099)
    expect(q.startLsn).toBe(1000)
    q.release(1100)
    expect(q.startLsn).toBe(1100)
    expect(() => q.read(1050, 10)).toThrow(/0\/41A is not held/)
    q.release(1150)
    expect([q.startLsn, q.heldBytes]).toEqual([1150, 0])
  })

  it('wakes a waiting sender when WAL arrives, or after the wait at the latest', async () => {
    const q = new WalQueue(0)
    const t = Date.now()
    await q.waitForMore(30)
    expect(Date.now() - t).toBeGreaterThanOrEqual(25)
    const waiting = q.waitForMore(10_000)
    q.push(Buffer.alloc(8))
    await waiting
    expect(Date.now() - t).toBeLessThan(5000)
  })
})
