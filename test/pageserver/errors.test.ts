/**
 * How the page service reports failures: an ErrorResponse with the SQLSTATE of the error's kind, and
 * anything unexpected as a bug. A pageserver without timelines needs no Postgres.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ZenithError } from '../../src/lib/errors.js'
import type { Pageserver } from '../../src/pageserver/pageserver.js'
import { PgClient } from '../../src/protocol/client.js'
import { errorResponse } from '../../src/protocol/command-server.js'
import type { PgServerError } from '../../src/protocol/errors.js'
import { startTestPageserver } from '../harness/pageserver.js'

describe('the page service', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-errors-'))
  let ps: Pageserver
  let client: PgClient
  let tenantId: string

  beforeAll(async () => {
    ps = (await startTestPageserver(dir, () => {})).ps
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
