/**
 * WAL out: a safekeeper speaks the walsender side of physical replication on 127.0.0.1:5454+N, for the
 * pageserver and for peers. The connection names its timeline as Neon's do, in the startup `options`:
 * `-c tenant_id=<id> -c timeline_id=<id>`. IDENTIFY_SYSTEM reports the compute's system id and timeline
 * with xlogpos = commit_lsn; START_REPLICATION PHYSICAL X streams from any X the safekeeper holds up to
 * commit_lsn, growing as it grows, so WAL that a new term may still truncate never leaves. The reader's
 * standby status updates are kept as pageserver feedback (write = last received, flush =
 * disk_consistent_lsn, apply = remote_consistent_lsn).
 *
 * A peer in recovery adds `-c term=<T>`: it needs all this safekeeper holds of term T, up to the flush
 * LSN (xlogpos too), and a tail that term's election may still cut is as good as the peer's own would
 * be. So it is served only while this safekeeper's term is T — refused at START_REPLICATION otherwise
 * ("failed to acquire term"), and the stream ends when the term moves on — and its status updates are
 * not the pageserver's.
 */
import type net from 'node:net'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn } from '../postgres/lsn.js'
import { createCommandServer } from '../protocol/command-server.js'
import { ReplicationCommandError } from '../protocol/errors.js'
import { replicationMode } from '../protocol/replication-commands.js'
import type { PgServerConnection, StartupParams } from '../protocol/server.js'
import { streamWal } from '../protocol/wal-stream.js'
import { runWalsenderCommand } from '../protocol/walsender.js'
import type { Safekeeper } from './safekeeper.js'
import type { SkTimeline, WalsenderInfo } from './timeline.js'

/** A quiet stream still sends a keepalive this often: the pageserver switches away after 10 s without. */
const KEEPALIVE_MS = 1000

export class WalsenderError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalsenderError'
}

export interface WalsenderOptions {
  tenantId: string
  timelineId: string
  /** A peer's recovery in this term: serve up to the flush LSN. */
  term: number | null
}

/** tenant_id, timeline_id and term from `options`, in the `-c key=value` or `--key=value` forms libpq passes. */
export function walsenderOptions(options: string | undefined): WalsenderOptions {
  const found: Record<string, string> = {}
  for (const m of (options ?? '').matchAll(/(?:-c\s*|--)(tenant_id|timeline_id|term)=(\S+)/g))
    found[m[1]] = m[2]
  if (!found.tenant_id || !found.timeline_id) {
    throw new WalsenderError(
      "the connection names no timeline: pass options='-c tenant_id=<id> -c timeline_id=<id>' at startup",
    )
  }
  const term = found.term === undefined ? null : Number(found.term)
  if (term !== null && (!Number.isSafeInteger(term) || term < 1)) {
    throw new WalsenderError(`term must be a positive integer, got "${found.term}"`)
  }
  return { tenantId: found.tenant_id, timelineId: found.timeline_id, term }
}

export function createWalsenderService(sk: Safekeeper): net.Server {
  let stopping: () => void = () => {}
  const stop = new Promise<void>((resolve) => {
    stopping = resolve
  })
  const server = createCommandServer({
    name: `safekeeper ${sk.config.id}`,
    run: (conn, sql, params) => runCommand(sk, conn, sql, params, stop),
    onBug: (e) => sk.log('error', 'walsender command failed: this is a bug', { error: e.stack }),
    onConnectionError: (err) => sk.log('warn', 'walsender connection failed', { error: err.message }),
  })
  server.on('close', () => stopping())
  return server
}

async function runCommand(
  sk: Safekeeper,
  conn: PgServerConnection,
  sql: string,
  params: StartupParams,
  stop: Promise<void>,
): Promise<void> {
  if (replicationMode(params) !== 'physical') {
    throw new WalsenderError('a safekeeper serves physical replication connections only (replication=true)')
  }
  const opts = walsenderOptions(params.options)
  const tl = sk.timeline(opts.tenantId, opts.timelineId)
  await runWalsenderCommand(conn, sql, {
    identify: () => ({
      systemId: tl.state.systemId,
      timeline: tl.state.pgTimeline,
      xlogpos: opts.term === null ? tl.commitLsn : tl.flushLsn,
      dbname: null,
    }),
    walSegmentSize: tl.state.walSegSize,
    noHistory: 'a safekeeper holds one Postgres timeline',
    startReplication: (conn, start, timeline) => {
      tl.metrics.startReplications.inc()
      return stream(tl, conn, start, timeline, opts.term, params.application_name ?? '', stop)
    },
  })
}

async function stream(
  tl: SkTimeline,
  conn: PgServerConnection,
  start: number,
  timeline: number | null,
  term: number | null,
  applicationName: string,
  stop: Promise<void>,
): Promise<void> {
  if (term !== null && term !== tl.state.term) {
    throw new ReplicationCommandError(
      `failed to acquire term ${term}: this safekeeper is in term ${tl.state.term}`,
      '55000',
    )
  }
  if (timeline !== null && timeline !== tl.state.pgTimeline) {
    throw new ReplicationCommandError(
      `requested timeline ${timeline} is not this safekeeper's timeline ${tl.state.pgTimeline}`,
      '22023',
    )
  }
  if (start < tl.state.localStartLsn || start > tl.flushLsn) {
    throw new ReplicationCommandError(
      `requested starting point ${formatLsn(start)} is not in the WAL this safekeeper holds, ${formatLsn(tl.state.localStartLsn)}..${formatLsn(tl.flushLsn)}`,
      '22023',
    )
  }
  const info: WalsenderInfo = { applicationName, startLsn: start, sentLsn: start }
  let termMoved = () => {}
  const ended =
    term === null
      ? stop
      : Promise.race([
          stop,
          new Promise<void>((resolve) => {
            termMoved = () => {
              if (tl.state.term !== term) resolve()
            }
            tl.events.on('term', termMoved)
          }),
        ])
  tl.walsenders.add(info)
  try {
    await streamWal(
      conn,
      {
        limit: () => (term === null ? tl.commitLsn : tl.flushLsn),
        read: (lsn, max) => tl.store.read(lsn, max),
        waitForMore: (ms) => tl.waitForAdvance(ms),
      },
      {
        start,
        keepaliveMs: KEEPALIVE_MS,
        stop: ended,
        onSent: (end) => {
          tl.metrics.walBytesOut.inc(end - info.sentLsn)
          info.sentLsn = end
        },
        onStatus: term === null ? (s) => tl.feedback(s) : undefined,
      },
    )
  } finally {
    tl.events.off('term', termMoved)
    tl.walsenders.delete(info)
  }
}
