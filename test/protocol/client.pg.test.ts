/**
 * PgClient against real PostgreSQL 15: simple queries, COPY TO STDOUT, physical streaming replication with
 * standby status updates the server must see, and password authentication (cleartext, MD5, SCRAM).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import { type ConnectOptions, PgClient } from '../../src/protocol/client.js'
import { PgClientError, PgServerError } from '../../src/protocol/errors.js'
import {
  encodeStandbyStatusUpdate,
  parseIdentifySystem,
  parseReplicationMessage,
} from '../../src/protocol/replication.js'
import { freePort, type PgCluster, startPostgres } from '../harness/postgres.js'

let pg: PgCluster
beforeAll(async () => {
  // A short sender timeout makes the walsender ask for replies (keepalives) within seconds.
  pg = await startPostgres({ name: 'protocol-client', settings: { wal_sender_timeout: '4s' } })
})
afterAll(async () => {
  await pg?.destroy()
})

function connect(opts: Partial<ConnectOptions> = {}): Promise<PgClient> {
  return PgClient.connect({
    host: pg.host,
    port: pg.port,
    user: 'postgres',
    connectTimeoutMs: 10_000,
    ...opts,
  })
}

async function withClient<T>(opts: Partial<ConnectOptions>, fn: (c: PgClient) => Promise<T>): Promise<T> {
  const client = await connect(opts)
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}

describe('PgClient queries', () => {
  it('returns typed values as text, NULLs, several rows and the last of several statements', async () => {
    await withClient({}, async (client) => {
      expect(client.parameters.server_version).toMatch(/^15\./)
      expect(client.parameters.client_encoding).toBe('UTF8')
      expect(client.processId).toBeGreaterThan(0)
      const one = await client.query(
        "SELECT 42::int4 AS i, 1.5::numeric AS n, 'naïve ☃'::text AS t, NULL::int AS nothing, true AS b, " +
          "'2020-02-29'::date AS d, '\\x00ff'::bytea AS bytes, ''::text AS empty",
      )
      expect(one).toEqual({
        fields: ['i', 'n', 't', 'nothing', 'b', 'd', 'bytes', 'empty'],
        rows: [['42', '1.5', 'naïve ☃', null, 't', '2020-02-29', '\\x00ff', '']],
        commandTag: 'SELECT 1',
      })
      const many = await client.query('SELECT g, g * 2 AS double FROM generate_series(1, 500) g')
      expect(many.rows).toHaveLength(500)
      expect(many.rows[499]).toEqual(['500', '1000'])
      expect(many.commandTag).toBe('SELECT 500')

      const last = await client.query(
        'CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1), (2); SELECT sum(x) FROM t',
      )
      expect(last).toEqual({ fields: ['sum'], rows: [['3']], commandTag: 'SELECT 1' })
      expect((await client.query('INSERT INTO t VALUES (3)')).commandTag).toBe('INSERT 0 1')
      expect(await client.query('')).toEqual({ fields: [], rows: [], commandTag: '' })
    })
  })

  it('rejects with PgServerError and stays usable', async () => {
    const notices: string[] = []
    await withClient({ onNotice: (n) => notices.push(n.M) }, async (client) => {
      const err = await client.query('SELECT 1/0').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgServerError)
      expect(err).toMatchObject({ code: '22012', severity: 'ERROR', message: 'division by zero' })
      const missing = await client.query('SELECT * FROM no_such_table').catch((e: unknown) => e)
      expect(missing).toMatchObject({ code: '42P01' })
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([['2']])
      // A failed transaction block: the error, then ROLLBACK brings it back.
      await client.query('BEGIN')
      await expect(client.query('SELECT 1/0')).rejects.toThrow(PgServerError)
      await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' })
      await client.query('ROLLBACK')
      await client.query("DO $$ BEGIN RAISE NOTICE 'hello %', 'there'; END $$")
      expect(notices).toEqual(['hello there'])
      expect((await client.query('SELECT 3')).rows).toEqual([['3']])
    })
  })

  it('streams COPY TO STDOUT and reports errors in the middle of it', async () => {
    await withClient({}, async (client) => {
      const chunks: Buffer[] = []
      for await (const chunk of client.copyOut('COPY (SELECT generate_series(1,1000)) TO STDOUT')) {
        chunks.push(Buffer.from(chunk))
      }
      const expected = `${Array.from({ length: 1000 }, (_, i) => i + 1).join('\n')}\n`
      expect(Buffer.concat(chunks).toString()).toBe(expected)
      // Postgres sends one CopyData per row.
      expect(chunks).toHaveLength(1000)

      let rows = 0
      const failing = async () => {
        for await (const _ of client.copyOut(
          'COPY (SELECT 1 / (500 - g) FROM generate_series(1, 1000) g) TO STDOUT',
        )) {
          rows++
        }
      }
      await expect(failing()).rejects.toMatchObject({ code: '22012' })
      expect(rows).toBe(499)
      expect((await client.query('SELECT 4')).rows).toEqual([['4']])
    })
  })

  it('fails with PgClientError naming the port when nothing listens', async () => {
    const port = await freePort()
    const err = await PgClient.connect({ host: '127.0.0.1', port, user: 'postgres' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PgClientError)
    expect((err as Error).message).toContain(`127.0.0.1:${port}`)
    expect((err as Error).message).toMatch(/ECONNREFUSED/)
  })
})

describe('PgClient physical replication', () => {
  it('streams WAL from a segment start, answers keepalives and reports positions the server sees', async () => {
    const appName = 'zenith_protocol_test'
    const repl = await connect({ params: { replication: 'true', application_name: appName } })
    const sql = await connect()
    try {
      const system = parseIdentifySystem(await repl.query('IDENTIFY_SYSTEM'))
      expect(system.systemId).toMatch(/^\d+$/)
      expect(system.timeline).toBe(1)
      expect(system.dbname).toBeNull()
      const segmentStart = system.xlogpos - (system.xlogpos % DEFAULT_WAL_SEGMENT_SIZE)

      const stream = await repl.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(segmentStart)}`)
      await sql.query('CREATE TABLE replicated AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g')
      const target = parseLsn((await sql.query('SELECT pg_current_wal_flush_lsn()')).rows[0][0]!)

      let expectedStart = segmentStart
      let received = 0
      let keepalivesAfterReport = 0
      let reported: { write: number; flush: number; apply: number } | null = null
      for await (const payload of stream) {
        const msg = parseReplicationMessage(payload)
        if (msg.kind === 'xlogData') {
          // Contiguous: each message continues where the previous one ended.
          expect(msg.walStart).toBe(expectedStart)
          expect(msg.walEnd).toBeGreaterThanOrEqual(msg.walStart)
          expectedStart += msg.data.length
          received += msg.data.length
          if (expectedStart >= target && reported === null) {
            // Distinct values, so that a mixed-up field order would show.
            reported = { write: expectedStart, flush: expectedStart - 8, apply: expectedStart - 16 }
            stream.send(encodeStandbyStatusUpdate(reported))
          }
        } else {
          // Unanswered keepalives make the walsender give up after wal_sender_timeout.
          const position = reported ?? { write: expectedStart, flush: expectedStart, apply: expectedStart }
          if (msg.replyRequested) stream.send(encodeStandbyStatusUpdate(position))
          if (reported) keepalivesAfterReport++
          if (keepalivesAfterReport > 0) break
        }
      }
      expect(received).toBeGreaterThanOrEqual(target - segmentStart)
      expect(keepalivesAfterReport).toBe(1)
      expect(reported).not.toBeNull()

      const seen = async () =>
        (
          await sql.query(
            `SELECT write_lsn, flush_lsn, replay_lsn FROM pg_stat_replication WHERE application_name = '${appName}'`,
          )
        ).rows
      const want = [[formatLsn(reported!.write), formatLsn(reported!.flush), formatLsn(reported!.apply)]]
      const deadline = Date.now() + 10_000
      while (JSON.stringify(await seen()) !== JSON.stringify(want) && Date.now() < deadline) await sleep(50)
      expect(await seen()).toEqual(want)

      // Ending our side makes the walsender end its side and finish the command; the connection stays usable.
      stream.end()
      for await (const _ of stream) {
        // Whatever was in flight before the walsender saw our CopyDone.
      }
      expect((await repl.query('IDENTIFY_SYSTEM')).rows).toHaveLength(1)
    } finally {
      await repl.close()
      await sql.close()
    }
  })

  it('fails the stream of START_REPLICATION at an impossible position with PgServerError', async () => {
    await withClient({ params: { replication: 'true' } }, async (repl) => {
      // The walsender switches to COPY BOTH before it checks the position, then reports the error.
      const stream = await repl.copyBoth('START_REPLICATION PHYSICAL FF/0')
      const iterate = async () => {
        for await (const _ of stream) expect.unreachable()
      }
      await expect(iterate()).rejects.toThrow(/ahead of the WAL flush position/)
      expect(stream.error).toBeInstanceOf(PgServerError)
      expect(parseIdentifySystem(await repl.query('IDENTIFY_SYSTEM')).timeline).toBe(1)
    })
  })
})

describe('PgClient password authentication', () => {
  const roles = {
    scram_user: { password: 'scram secret ✓', encryption: 'scram-sha-256', method: 'scram-sha-256' },
    md5_user: { password: 'md5-secret', encryption: 'md5', method: 'md5' },
    plain_user: { password: 'plain-secret', encryption: 'scram-sha-256', method: 'password' },
  } as const

  beforeAll(async () => {
    for (const [role, { password, encryption }] of Object.entries(roles)) {
      // One session, so that the SET applies to the CREATE ROLE after it.
      await pg.sql([
        `SET password_encryption = '${encryption}'`,
        `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`,
      ])
    }
    const hbaPath = path.join(pg.datadir, 'pg_hba.conf')
    const hba = await fs.readFile(hbaPath, 'utf8')
    const lines = Object.entries(roles).map(([role, { method }]) => `host all ${role} 127.0.0.1/32 ${method}`)
    await fs.writeFile(hbaPath, `${lines.join('\n')}\n${hba}`)
    await pg.sql('SELECT pg_reload_conf()')
    // The reload is asynchronous: wait until a wrong password stops being trusted.
    const deadline = Date.now() + 10_000
    for (;;) {
      const result = await connect({ user: 'scram_user', password: 'wrong', database: 'postgres' }).catch(
        (e) => e,
      )
      if (result instanceof PgServerError) break
      if (result instanceof PgClient) await result.close()
      if (Date.now() > deadline) throw new Error(`pg_hba.conf reload not seen: ${String(result)}`)
      await sleep(50)
    }
  })

  for (const [role, { password, method }] of Object.entries(roles)) {
    it(`authenticates ${role} with ${method} and refuses a wrong password with 28P01`, async () => {
      await withClient({ user: role, password, database: 'postgres' }, async (client) => {
        expect((await client.query('SELECT current_user')).rows).toEqual([[role]])
      })
      const wrong = await connect({ user: role, password: `${password}x`, database: 'postgres' }).catch(
        (e) => e,
      )
      expect(wrong).toBeInstanceOf(PgServerError)
      expect(wrong).toMatchObject({ code: '28P01', severity: 'FATAL' })
      const none = await connect({ user: role, database: 'postgres' }).catch((e) => e)
      expect(none).toBeInstanceOf(PgClientError)
      expect((none as Error).message).toMatch(/no password was given/)
    })
  }

  it('checks that SCRAM was really used: the stored verifier is SCRAM, the md5 one is md5', async () => {
    const rows = (
      await withClient({}, (c) =>
        c.query(
          "SELECT rolname, left(rolpassword, 13) FROM pg_authid WHERE rolname LIKE '%_user' ORDER BY 1",
        ),
      )
    ).rows
    expect(rows).toEqual([
      ['md5_user', expect.stringMatching(/^md5/)],
      ['plain_user', 'SCRAM-SHA-256'],
      ['scram_user', 'SCRAM-SHA-256'],
    ])
  })
})
