/**
 * WAL out: a safekeeper speaks the walsender side of physical replication on 127.0.0.1:5454+N, for the
 * pageserver and for peers. The connection names its timeline as Neon's do, in the startup `options`:
 * `-c tenant_id=<id> -c timeline_id=<id>`. IDENTIFY_SYSTEM reports the compute's system id and timeline
 * with xlogpos = commit_lsn; START_REPLICATION PHYSICAL X streams from any X the safekeeper holds up to
 * commit_lsn, growing as it grows, so WAL that a new term may still truncate never leaves. The reader's
 * standby status updates are kept as pageserver feedback (write = last received, flush =
 * disk_consistent_lsn, apply = remote_consistent_lsn).
 */
import type net from 'node:net'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn } from '../postgres/lsn.js'
import { createCommandServer } from '../protocol/command-server.js'
import { ReplicationCommandError } from '../protocol/errors.js'
import {
  formatWalSegmentSize,
  parseReplicationCommand,
  replicationMode,
  sendIdentifySystem,
  sendShow,
} from '../protocol/replication-commands.js'
import type { PgServerConnection, StartupParams } from '../protocol/server.js'
import { streamWal } from '../protocol/wal-stream.js'
import type { Safekeeper } from './safekeeper.js'
import type { SkTimeline, WalsenderInfo } from './timeline.js'

/** A quiet stream still sends a keepalive this often: the pageserver switches away after 10 s without. */
const KEEPALIVE_MS = 1000

export class WalsenderError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalsenderError'
}

/** tenant_id and timeline_id from `options`, in the `-c key=value` or `--key=value` forms libpq passes. */
export function timelineOfOptions(options: string | undefined): { tenantId: string; timelineId: string } {
  const found: Record<string, string> = {}
  for (const m of (options ?? '').matchAll(/(?:-c\s*|--)(tenant_id|timeline_id)=(\S+)/g)) found[m[1]] = m[2]
  if (!found.tenant_id || !found.timeline_id) {
    throw new WalsenderError(
      "the connection names no timeline: pass options='-c tenant_id=<id> -c timeline_id=<id>' at startup",
    )
  }
  return { tenantId: found.tenant_id, timelineId: found.timeline_id }
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
  const { tenantId, timelineId } = timelineOfOptions(params.options)
  const tl = sk.timeline(tenantId, timelineId)
  const cmd = parseReplicationCommand(sql)
  switch (cmd.kind) {
    case 'identifySystem':
      sendIdentifySystem(conn, {
        systemId: tl.state.systemId,
        timeline: tl.state.pgTimeline,
        xlogpos: tl.commitLsn,
        dbname: null,
      })
      return
    case 'show':
      if (cmd.name !== 'wal_segment_size') {
        throw new ReplicationCommandError(`unrecognized configuration parameter "${cmd.name}"`, '42704')
      }
      sendShow(conn, cmd.name, formatWalSegmentSize(tl.state.walSegSize))
      return
    case 'timelineHistory':
      throw new ReplicationCommandError(
        `timeline ${cmd.timeline} has no history here: a safekeeper holds one Postgres timeline`,
        '58P01',
      )
    case 'startReplication':
      return stream(tl, conn, cmd.start, cmd.timeline, params.application_name ?? '', stop)
  }
}

async function stream(
  tl: SkTimeline,
  conn: PgServerConnection,
  start: number,
  timeline: number | null,
  applicationName: string,
  stop: Promise<void>,
): Promise<void> {
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
  tl.walsenders.add(info)
  try {
    await streamWal(
      conn,
      {
        limit: () => tl.commitLsn,
        read: (lsn, max) => tl.store.read(lsn, max),
        waitForMore: (ms) => tl.waitForAdvance(ms),
      },
      {
        start,
        keepaliveMs: KEEPALIVE_MS,
        stop,
        onSent: (end) => {
          tl.metrics.walBytesOut += end - info.sentLsn
          info.sentLsn = end
        },
        onStatus: (s) => tl.feedback(s),
      },
    )
  } finally {
    tl.walsenders.delete(info)
  }
}
