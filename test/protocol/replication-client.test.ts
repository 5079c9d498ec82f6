import { describe, expect, it } from 'vitest'
import {
  ConnstrError,
  parseConnstr,
  Reconnector,
  STABLE_SESSION_MS,
} from '../../src/protocol/replication-client.js'

describe('parseConnstr', () => {
  it('reads URLs and key=value strings', () => {
    expect(parseConnstr('postgresql://me@127.0.0.1:55432/postgres')).toEqual({
      host: '127.0.0.1',
      port: 55432,
      user: 'me',
    })
    expect(parseConnstr('host=::1 port=5454')).toEqual({ host: '::1', port: 5454, user: 'postgres' })
    expect(parseConnstr('postgres://[::1]')).toEqual({ host: '::1', port: 5432, user: 'postgres' })
  })

  it('names what it was given and what would do', () => {
    expect(() => parseConnstr('host=x port=99999', 'WAL source')).toThrow(ConnstrError)
    expect(() => parseConnstr('nonsense', 'WAL source')).toThrow(
      /^WAL source "nonsense" is not a connection string with host and port, e\.g\. postgresql:/,
    )
  })
})

describe('Reconnector', () => {
  it('runs sessions again after failures, logs a repeated failure once, and stops at once', async () => {
    const seen: [string, boolean][] = []
    let sessions = 0
    let interrupts = 0
    let release: (() => void) | undefined
    const r = new Reconnector({
      session: async (streaming) => {
        sessions++
        if (sessions <= 3) throw new Error('connection refused')
        streaming()
        await new Promise<void>((resolve) => {
          release = resolve
        })
      },
      interrupt: async () => {
        interrupts++
        release?.()
      },
      endedMessage: 'the server ended replication',
      onError: (msg, repeated) => seen.push([msg, repeated]),
      backoffMaxMs: 50,
    })
    for (let i = 0; i < 200 && r.state !== 'streaming'; i++) await new Promise((res) => setTimeout(res, 10))
    expect(r.state).toBe('streaming')
    expect(r.lastError).toBeUndefined()
    expect(seen).toEqual([
      ['connection refused', false],
      ['connection refused', true],
      ['connection refused', true],
    ])
    const before = interrupts
    await r.stop()
    expect(r.state).toBe('stopped')
    expect(interrupts).toBeGreaterThan(before)
    expect(sessions).toBe(4)
  })

  it('calls a session that ended on its own by the ended message', async () => {
    let sessions = 0
    const r = new Reconnector({
      session: async () => {
        sessions++
      },
      interrupt: async () => {},
      endedMessage: 'the server ended replication',
      backoffMaxMs: 20,
    })
    for (let i = 0; i < 200 && sessions < 2; i++) await new Promise((res) => setTimeout(res, 10))
    expect(r.lastError).toBe('the server ended replication')
    await r.stop()
  })
})

describe('Reconnector backoff', () => {
  it('grows across sessions that fail as soon as they stream, and starts over after a stable one', async () => {
    const starts: number[] = []
    const r = new Reconnector({
      session: async (streaming) => {
        starts.push(Date.now())
        streaming()
        if (starts.length === 5) await new Promise((res) => setTimeout(res, STABLE_SESSION_MS + 50))
        throw new Error('refused its first bytes')
      },
      interrupt: async () => {},
      endedMessage: 'the server ended replication',
      backoffMaxMs: 10_000,
    })
    for (let i = 0; i < 400 && starts.length < 6; i++) await new Promise((res) => setTimeout(res, 10))
    await r.stop()
    const gaps = starts.slice(1).map((t, i) => t - starts[i])
    // 100, 150, 225, 337 ms between the first five: streaming alone does not reset the backoff.
    expect(gaps[3]).toBeGreaterThanOrEqual(300)
    expect(gaps[3]).toBeGreaterThan(gaps[0] * 2)
    // The fifth streamed for over a second: the sixth came after the first step again.
    expect(gaps[4] - STABLE_SESSION_MS).toBeLessThan(250)
  })
})

describe('Reconnector with permanent failures', () => {
  it('ends as broken on a failure its owner calls permanent, and retries the others', async () => {
    let sessions = 0
    const seen: string[] = []
    const r = new Reconnector({
      session: async () => {
        sessions++
        throw new Error(sessions === 1 ? 'connection refused' : 'the WAL is gone')
      },
      interrupt: async () => {},
      endedMessage: 'the server ended replication',
      onError: (msg) => seen.push(msg),
      isPermanent: (err) => (err as Error).message === 'the WAL is gone',
      backoffMaxMs: 20,
    })
    for (let i = 0; i < 200 && r.state !== 'broken'; i++) await new Promise((res) => setTimeout(res, 10))
    expect(r.state).toBe('broken')
    expect(r.lastError).toBe('the WAL is gone')
    await new Promise((res) => setTimeout(res, 100))
    expect(sessions).toBe(2)
    expect(seen).toEqual(['connection refused'])
    await r.stop()
    expect(r.state).toBe('stopped')
  })
})
