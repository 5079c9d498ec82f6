/**
 * The walsender's answers to the replication commands of one Postgres timeline, whatever holds its WAL:
 * a safekeeper's store, or WAL made as it is sent (`wal load --synthetic`). IDENTIFY_SYSTEM and SHOW
 * wal_segment_size come from the target; TIMELINE_HISTORY is refused, as one timeline has no history to
 * give; START_REPLICATION is the target's to check and serve, with streamWal.
 *
 * `createQueueWalsender` is such a walsender over a WalQueue, on a listening socket of its own.
 */
import type net from 'node:net'
import type { ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, walFileName } from '../postgres/lsn.js'
import { createCommandServer } from './command-server.js'
import { ReplicationCommandError } from './errors.js'
import type { IdentifySystem, StandbyStatusUpdate } from './replication.js'
import {
  formatWalSegmentSize,
  parseReplicationCommand,
  replicationMode,
  sendIdentifySystem,
  sendShow,
} from './replication-commands.js'
import type { PgServerConnection, StartupParams } from './server.js'
import type { WalQueue } from './wal-queue.js'
import { streamWal } from './wal-stream.js'

export interface WalsenderTarget {
  identify(): IdentifySystem
  walSegmentSize: number
  /** What TIMELINE_HISTORY is refused with. */
  noHistory: string
  /** START_REPLICATION PHYSICAL from `start`; `timeline` null when the receiver named none. */
  startReplication(conn: PgServerConnection, start: Lsn, timeline: number | null): Promise<void>
}

/** Runs one replication command of a physical replication session. */
export async function runWalsenderCommand(
  conn: PgServerConnection,
  sql: string,
  target: WalsenderTarget,
): Promise<void> {
  const cmd = parseReplicationCommand(sql)
  switch (cmd.kind) {
    case 'identifySystem':
      sendIdentifySystem(conn, target.identify())
      return
    case 'show':
      if (cmd.name !== 'wal_segment_size') {
        throw new ReplicationCommandError(`unrecognized configuration parameter "${cmd.name}"`, '42704')
      }
      sendShow(conn, cmd.name, formatWalSegmentSize(target.walSegmentSize))
      return
    case 'timelineHistory':
      throw new ReplicationCommandError(
        `timeline ${cmd.timeline} has no history here: ${target.noHistory}`,
        '58P01',
      )
    case 'startReplication':
      return target.startReplication(conn, cmd.start, cmd.timeline)
  }
}

export interface QueueWalsenderOptions {
  /** What the server is called in errors. */
  name: string
  queue: WalQueue
  systemId: string
  timeline: number
  walSegmentSize: number
  keepaliveMs: number
  /**
   * How many receivers (told apart by application_name, so a reconnect is the same one) must have the WAL
   * before it goes: a pageserver alone, or each safekeeper of a quorum. Default 1.
   */
  receivers?: number
  /** Hears each standby status update, after the queue has released what it reports written. */
  onStatus?: (s: StandbyStatusUpdate) => void
  onBug: (err: ZenithError) => void
  onConnectionError: (err: Error) => void
}

/** A walsender of the WAL in `queue`, which it lets go as every receiver reports it written. */
export function createQueueWalsender(opts: QueueWalsenderOptions): net.Server {
  const { queue } = opts
  const written = new Map<string, Lsn>()
  const heard = (receiver: string, s: StandbyStatusUpdate) => {
    written.set(receiver, Math.max(s.write, written.get(receiver) ?? 0))
    if (written.size >= (opts.receivers ?? 1)) queue.release(Math.min(...written.values()))
    opts.onStatus?.(s)
  }
  let stopping: () => void = () => {}
  const stop = new Promise<void>((resolve) => {
    stopping = resolve
  })
  const targetFor = (receiver: string): WalsenderTarget => ({
    identify: () => ({
      systemId: opts.systemId,
      timeline: opts.timeline,
      xlogpos: queue.endLsn,
      dbname: null,
    }),
    walSegmentSize: opts.walSegmentSize,
    noHistory: `${opts.name} serves one timeline`,
    startReplication: async (conn, start, timeline) => {
      if (timeline !== null && timeline !== opts.timeline) {
        throw new ReplicationCommandError(
          `requested timeline ${timeline} is not this walsender's timeline ${opts.timeline}`,
          '22023',
        )
      }
      // Postgres' words for WAL that is gone or not there yet, which a pageserver knows not to retry.
      if (start < queue.startLsn) {
        const seg = walFileName(opts.timeline, Math.floor(start / opts.walSegmentSize), opts.walSegmentSize)
        throw new ReplicationCommandError(
          `requested WAL segment ${seg} has already been removed: ${opts.name} holds WAL from ${formatLsn(queue.startLsn)}`,
          '58P01',
        )
      }
      if (start > queue.endLsn) {
        throw new ReplicationCommandError(
          `requested starting point ${formatLsn(start)} is ahead of the WAL flush position of this server ${formatLsn(queue.endLsn)}`,
          '22023',
        )
      }
      await streamWal(conn, queue, {
        start,
        keepaliveMs: opts.keepaliveMs,
        stop,
        onStatus: (s) => heard(receiver, s),
      })
    },
  })
  const server = createCommandServer({
    name: opts.name,
    run: async (c: PgServerConnection, sql: string, params: StartupParams) => {
      if (replicationMode(params) !== 'physical') {
        throw new ReplicationCommandError(
          `${opts.name} serves physical replication connections only (replication=true)`,
          '0A000',
        )
      }
      await runWalsenderCommand(c, sql, targetFor(params.application_name ?? ''))
    },
    onBug: opts.onBug,
    onConnectionError: opts.onConnectionError,
  })
  server.on('close', () => stopping())
  return server
}
