/**
 * Computes as running Postgres servers: whether an endpoint's server runs, and where the WAL of a
 * branch's running writer ends — what listings measure the lag of the safekeepers and the pageserver
 * against.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ZenithError } from '../lib/errors.js'
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

/** A writer's insert and flush LSN (computeWalLsns of a compute that is not read-only). */
export interface WriterWalLsns {
  insert_lsn: string
  flush_lsn: string
}

/** computeWalLsns of a writer; null when it does not answer or has no WAL of its own. */
export async function writerWalLsnsOf(port: number): Promise<WriterWalLsns | null> {
  try {
    const { insert_lsn, flush_lsn } = await computeWalLsns(port)
    return insert_lsn === null || flush_lsn === null ? null : { insert_lsn, flush_lsn }
  } catch (err) {
    // Stopping, starting up, or gone since it was found running: it has no position to show.
    if (err instanceof ZenithError) return null
    throw err
  }
}

/**
 * The WAL positions of each timeline's running writer, by timeline id (endpoints at a fixed LSN never
 * write; a branch takes one writer), of every timeline or of one. Ask after whatever is measured against
 * them: they only grow, so a lag is never understated.
 */
export async function writerWalPositions(
  repoDir: string,
  c: ClusterConfig,
  opts: { timelineId?: string } = {},
): Promise<Map<string, WriterWalLsns>> {
  const found = new Map<string, WriterWalLsns>()
  for (const [name, e] of Object.entries(c.endpoints)) {
    if (opts.timelineId !== undefined && e.timelineId !== opts.timelineId) continue
    if (e.lsn !== undefined || !(await endpointRunning(repoDir, e, name))) continue
    const at = await writerWalLsnsOf(e.port)
    if (at !== null) found.set(e.timelineId, at)
  }
  return found
}
