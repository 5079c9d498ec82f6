/**
 * How the pageserver's two surfaces report failures: HTTP by status and Neon's {"msg"}, the page service
 * by an ErrorResponse with a SQLSTATE; both from the error's kind, and anything unexpected as a bug.
 * A pageserver without timelines needs no Postgres.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { EngineStateError, LsnTimeoutError } from '../../src/engine/errors.js'
import { ZenithError } from '../../src/lib/errors.js'
import { DEFAULT_PAGESERVER_CONFIG } from '../../src/pageserver/config.js'
import { HttpError, Router } from '../../src/pageserver/http-router.js'
import { errorResponse } from '../../src/pageserver/page-service.js'
import { Pageserver } from '../../src/pageserver/pageserver.js'
import { LsnError } from '../../src/postgres/lsn.js'
import { PgClient } from '../../src/protocol/client.js'
import type { PgServerError } from '../../src/protocol/errors.js'

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

describe('the page service', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-errors-'))
  let ps: Pageserver
  let client: PgClient
  let tenantId: string

  beforeAll(async () => {
    ps = await Pageserver.start(dir, {
      log: () => {},
      config: {
        ...DEFAULT_PAGESERVER_CONFIG,
        listenPgAddr: { host: '127.0.0.1', port: await freePort() },
        listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
      },
    })
    tenantId = ps.repo.createTenant().tenantId
    client = await PgClient.connect({ ...ps.config.listenPgAddr, user: 'postgres' })
  })
  afterAll(async () => {
    await client?.close()
    await ps?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const failure = (sql: string) =>
    client.query(sql).then(
      () => {
        throw new Error(`${sql} succeeded`)
      },
      (err: PgServerError) => ({ code: err.code, message: err.message }),
    )

  it('answers with the SQLSTATE of the kind, and the session goes on', async () => {
    expect(await failure('frobnicate')).toMatchObject({
      code: '22023',
      message: /unsupported command "frobnicate"/,
    })
    expect(await failure('show 123')).toMatchObject({ code: '22023', message: /invalid tenant id "123"/ })
    const unknown = 'f'.repeat(32)
    expect(await failure(`show ${unknown}`)).toEqual({
      code: '42704',
      message: `tenant ${unknown} not found`,
    })
    expect(await failure(`basebackup ${tenantId} ${'e'.repeat(32)}`)).toMatchObject({ code: '42704' })
    const shown = await client.query(`show ${tenantId}`)
    expect(shown.rows).toHaveLength(1)
  })

  it('answers an unexpected exception as a bug with XX000', () => {
    expect(errorResponse(new TypeError('x is not a function'))).toEqual({
      code: 'XX000',
      message: 'this is a bug in zenith: x is not a function',
    })
    expect(errorResponse(new ZenithError('gone', { kind: 'unavailable', hint: 'start it' }))).toEqual({
      code: '57P03',
      message: 'gone',
      hint: 'start it',
    })
  })
})
