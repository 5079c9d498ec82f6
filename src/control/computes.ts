/**
 * Computes as running Postgres servers: whether an endpoint's server runs, and where the WAL of a
 * branch's running writer ends — what listings measure the safekeepers' lag against.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ZenithError } from '../lib/errors.js'
import { type Lsn, parseLsn } from '../postgres/lsn.js'
import { pgCtlStatus } from '../postgres/pg-bin.js'
import { PgClient } from '../protocol/client.js'
import { endpointDataDir } from './layout.js'
import type { ClusterConfig, EndpointSpec } from './repo-config.js'

/** A listing asks each compute once, but must not hang on one that does not answer. */
const QUERY_TIMEOUT_MS = 2_000

export async function endpointRunning(repoDir: string, e: EndpointSpec, name: string): Promise<boolean> {
  const pgdata = endpointDataDir(repoDir, e.tenantId, name)
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) return false
  return (await pgCtlStatus(pgdata)).running
}

/**
 * Where the WAL of the compute on `port` ends, in one round trip: insert and flush LSN, both null on a
 * read-only endpoint (a hot standby has no WAL of its own). Throws a ZenithError when it does not answer.
 */
export async function computeWalLsns(
  port: number,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<{ insert_lsn: string | null; flush_lsn: string | null }> {
  const client = await PgClient.connect({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    connectTimeoutMs: timeoutMs,
  })
  try {
    const [insert, flush] = (
      await client.query(
        'SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn() END, ' +
          'CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END',
      )
    ).rows[0]
    return { insert_lsn: insert, flush_lsn: flush }
  } finally {
    await client.close()
  }
}

/** `pg_current_wal_flush_lsn()` of the compute on `port`; null when it does not answer. */
async function flushLsnOf(port: number): Promise<Lsn | null> {
  try {
    const { flush_lsn } = await computeWalLsns(port)
    return flush_lsn === null ? null : parseLsn(flush_lsn)
  } catch (err) {
    // Stopping, starting up, or gone since it was found running: it has no position to show.
    if (err instanceof ZenithError) return null
    throw err
  }
}

/**
 * The flush LSN of each timeline's running writer, by timeline id (endpoints at a fixed LSN never
 * write; a branch takes one writer).
 */
export async function writerFlushLsns(repoDir: string, c: ClusterConfig): Promise<Map<string, Lsn>> {
  const found = new Map<string, Lsn>()
  for (const [name, e] of Object.entries(c.endpoints)) {
    if (e.lsn !== undefined || !(await endpointRunning(repoDir, e, name))) continue
    const lsn = await flushLsnOf(e.port)
    if (lsn !== null) found.set(e.timelineId, lsn)
  }
  return found
}
