/**
 * The writer lock that keeps the acceptor and peer recovery from writing a timeline's WAL store at the
 * same time: one holder, waiters served in order, a waiter that gives up leaves no trace.
 */
import { describe, expect, it } from 'vitest'
import { WriterLock } from '../../src/safekeeper/wal-intake.js'

const never = () => new AbortController().signal

describe('WriterLock', () => {
  it('has one holder at a time: recovery cannot start while the acceptor writes', async () => {
    const lock = new WriterLock()
    const releaseAcceptor = await lock.acquire('acceptor', never())
    expect(lock.holder).toBe('acceptor')
    expect(lock.tryAcquire('recovery')).toBeNull()
    releaseAcceptor()
    const releaseRecovery = lock.tryAcquire('recovery')
    expect(lock.holder).toBe('recovery')
    releaseRecovery?.()
    expect(lock.holder).toBeNull()
  })

  it('makes the acceptor wait for recovery to finish, and never lets both hold it', async () => {
    const lock = new WriterLock()
    const releaseRecovery = lock.tryAcquire('recovery')
    let acceptorIn = false
    const acceptor = lock.acquire('acceptor', never()).then((release) => {
      acceptorIn = true
      return release
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(acceptorIn).toBe(false)
    // A waiter is queued: recovery may not jump ahead of it either.
    releaseRecovery?.()
    expect(lock.tryAcquire('recovery')).toBeNull()
    const releaseAcceptor = await acceptor
    expect(lock.holder).toBe('acceptor')
    // Releasing twice is harmless: it does not free the lock under a later holder.
    releaseRecovery?.()
    expect(lock.holder).toBe('acceptor')
    releaseAcceptor()
    expect(lock.holder).toBeNull()
  })

  it('drops a waiter whose signal aborts', async () => {
    const lock = new WriterLock()
    const release = lock.tryAcquire('recovery')
    const stop = new AbortController()
    const waiting = lock.acquire('acceptor', stop.signal)
    stop.abort(new Error('acceptor stopped'))
    await expect(waiting).rejects.toThrow('acceptor stopped')
    release?.()
    expect(lock.holder).toBeNull()
    expect(lock.tryAcquire('vote')).not.toBeNull()
  })
})
