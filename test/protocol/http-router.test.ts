/**
 * How the HTTP APIs report failures: a status from the error's kind and Neon's {"msg"}, and an unexpected
 * exception as a bug that is logged.
 */
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineStateError, LsnTimeoutError } from '../../src/engine/errors.js'
import { ZenithError } from '../../src/lib/errors.js'
import { LsnError } from '../../src/postgres/lsn.js'
import { HttpError, kindOfStatus, Router } from '../../src/protocol/http-router.js'

describe('the HTTP router', () => {
  const bugs: Error[] = []
  let server: http.Server
  let base: string

  beforeAll(async () => {
    const r = new Router()
    const fail = (err: unknown) => () => {
      throw err
    }
    r.on('GET', '/lsn', fail(new LsnError('invalid LSN "x"')))
    r.on('GET', '/conflict', fail(new EngineStateError('timeline has children')))
    r.on('GET', '/timeout', fail(new LsnTimeoutError('t', 100, 50, 10)))
    r.on('GET', '/down', fail(new ZenithError('the compute is down', { kind: 'unavailable' })))
    r.on('GET', '/corrupt', fail(new ZenithError('bad CRC', { kind: 'corruption' })))
    r.on('GET', '/teapot', fail(new HttpError(413, 'too large')))
    r.on('GET', '/bug', () => ({ json: (undefined as unknown as { x: number }).x }))
    server = http.createServer((req, res) => void r.handle(req, res, (e) => bugs.push(e)))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  afterAll(() => new Promise((resolve) => server.close(resolve)))

  it('answers each kind with its status and the message as {"msg"}', async () => {
    const cases: [string, number, RegExp][] = [
      ['/lsn', 400, /^invalid LSN "x"$/],
      ['/nowhere', 404, /^no such endpoint: GET \/nowhere$/],
      ['/conflict', 409, /^timeline has children$/],
      ['/timeout', 408, /^timed out after 10 ms/],
      ['/down', 503, /^the compute is down$/],
      ['/corrupt', 500, /^bad CRC$/],
      ['/teapot', 413, /^too large$/],
    ]
    for (const [p, status, msg] of cases) {
      const res = await fetch(base + p)
      expect({ p, status: res.status }).toEqual({ p, status })
      expect((await res.json()).msg).toMatch(msg)
    }
    const wrongMethod = await fetch(`${base}/lsn`, { method: 'POST' })
    expect(wrongMethod.status).toBe(405)
    expect(bugs).toEqual([])
  })

  it('answers an unexpected exception as a bug: 500, says so, and the bug is logged', async () => {
    const res = await fetch(`${base}/bug`)
    expect(res.status).toBe(500)
    expect((await res.json()).msg).toMatch(/^this is a bug in zenith: Cannot read properties of undefined/)
    expect(bugs).toHaveLength(1)
    expect(bugs[0].stack).toMatch(/TypeError/)
  })
})

describe('kindOfStatus', () => {
  it('reads the kind back from a status, as the control plane does with a pageserver reply', () => {
    expect([400, 404, 405, 408, 409, 413, 500, 502, 503].map(kindOfStatus)).toEqual([
      'user_input',
      'not_found',
      'user_input',
      'timeout',
      'conflict',
      'user_input',
      'external',
      'external',
      'unavailable',
    ])
  })
})
