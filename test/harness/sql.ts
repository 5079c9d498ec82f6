/**
 * SQL from tests and benchmarks, through node-postgres (`pg`) rather than a psql child process.
 *
 * Every call opens one `pg.Client` to a connection string and closes it afterwards, also when the query
 * fails. Text without params goes out as one simple-protocol Query, which is also what zenith's page
 * service understands. Unlike a psql script, a string with several statements then runs as ONE implicit
 * transaction: an error rolls back the statements before it, and VACUUM, CREATE/DROP DATABASE and friends
 * refuse to run in it. Send those as separate calls, or as entries of a `queryText` script.
 *
 * Typical use:
 *
 *     const [{ lsn }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_insert_lsn() AS lsn')
 *     expect(await queryText(connstr, 'SELECT count(*), max(i) FROM t')).toBe('200|200')
 *     await queryText(connstr, ['CREATE DATABASE d', 'VACUUM t', 'CHECKPOINT'])
 *
 * A cluster from ./postgres.ts offers the same as `pg.query()` and `pg.sql()`.
 */
import path from 'node:path'
import { execa } from 'execa'
import pg from 'pg'
import { DEFAULT_PG_DISTRIB_DIR } from '../../src/postgres/pg-bin.js'

/** Runs `fn` on a fresh connection to `connectionString` and closes it afterwards, also on failure. */
async function withClient<T>(connectionString: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString })
  // A server that goes away mid-query also makes the client emit 'error'; the query's rejection says it.
  client.on('error', () => {})
  try {
    await client.connect()
    return await fn(client)
  } finally {
    // The caller wants the query's outcome; a failed goodbye on a dead connection would only hide it.
    await client.end().catch(() => {})
  }
}

/**
 * The rows of `text`, parsed by pg's default type parsers (int8, numeric and pg_lsn stay strings). With
 * several statements, the rows of all of them in order.
 */
export function query<T = Record<string, unknown>>(
  connectionString: string,
  text: string,
  params?: unknown[],
): Promise<T[]> {
  return withClient(connectionString, async (client) => {
    const result = await client.query(text, params)
    return (Array.isArray(result) ? result : [result]).flatMap((r: pg.QueryResult) => r.rows as T[])
  })
}

/** Every value as the server sent it, so that the text form matches what psql printed. */
const RAW_TEXT: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as unknown as pg.CustomTypesConfig['getTypeParser'],
}

/**
 * What `psql -A -t` printed for `script`: one line per row of every statement, columns joined by `|`, NULL
 * as the empty string, values in Postgres' text form (booleans `t`/`f`). A list runs like a psql script:
 * each entry is its own Query on one session, so each commits on its own and SET or pg_backup_start
 * carry over to the next.
 */
export function queryText(connectionString: string, script: string | readonly string[]): Promise<string> {
  return withClient(connectionString, async (client) => {
    const lines: string[] = []
    for (const text of typeof script === 'string' ? [script] : script) {
      const result = await client.query<unknown[]>({ text, rowMode: 'array', types: RAW_TEXT })
      const results: pg.QueryArrayResult[] = Array.isArray(result) ? result : [result]
      for (const r of results) for (const row of r.rows) lines.push(row.map((value) => value ?? '').join('|'))
    }
    return lines.join('\n')
  })
}

/**
 * pg_dump of a database as plain SQL, from the installation the tests use: what two computes must agree
 * on when one was rebuilt from the pageserver.
 */
export async function pgDump(connectionString: string): Promise<string> {
  const bin = path.join(process.env.ZENITH_PG_DISTRIB_DIR ?? DEFAULT_PG_DISTRIB_DIR, 'bin', 'pg_dump')
  const r = await execa(bin, ['--no-sync', '-d', connectionString])
  // pg_dump 15.14+ writes a random key into \restrict lines: two dumps of one database differ there only.
  return r.stdout.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict')
}
