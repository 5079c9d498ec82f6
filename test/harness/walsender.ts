/**
 * A tiny walsender built from src/protocol's primitives, for tests: it serves the WAL of one directory of
 * segments (one timeline) to physical replication clients on 127.0.0.1, and records what they send.
 *
 * It behaves like a primary with a synchronous standby: its flush position starts one step into the WAL
 * and moves one step further each time the receiver reports it has written everything sent, until the end
 * of the directory's WAL. When it has nothing more to send it asks for a reply with a keepalive, as
 * Postgres does on wal_sender_timeout / 2.
 */
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { type Lsn, segmentStart, walFileName } from '../../src/postgres/lsn.js'
import { scanWalDir } from '../../src/postgres/wal-dir.js'
import { ReplicationCommandError } from '../../src/protocol/errors.js'
import {
  encodePrimaryKeepalive,
  encodeXLogData,
  type HotStandbyFeedback,
  parseStandbyMessage,
  type StandbyStatusUpdate,
} from '../../src/protocol/replication.js'
import {
  beginStreaming,
  endStreaming,
  formatWalSegmentSize,
  parseReplicationCommand,
  type ReplicationCommand,
  replicationMode,
  sendIdentifySystem,
  sendShow,
} from '../../src/protocol/replication-commands.js'
import { PgServerConnection } from '../../src/protocol/server.js'

/** Postgres' MAX_SEND_SIZE: 16 WAL pages per XLogData message. */
const MAX_SEND_SIZE = 16 * 8192

export interface TestWalSender {
  port: number
  systemId: string
  timeline: number
  /** First and end LSN of the WAL served. */
  start: Lsn
  end: Lsn
  /** How far the flush position moves when the receiver has caught up. */
  step: number
  /** The flush position the walsender reports; it grows as receivers catch up. */
  readonly flushLsn: Lsn
  /** Every query received, in order, as sent. */
  commands: string[]
  statuses: StandbyStatusUpdate[]
  feedback: HotStandbyFeedback[]
  /** [start, end) of every XLogData message sent. */
  sent: [Lsn, Lsn][]
  /** Errors a connection handler ended with; a test expects none. */
  errors: unknown[]
  close(): Promise<void>
}

export interface TestWalSenderOptions {
  /** How far the flush position moves each time the receiver has caught up; 256 KiB by default. */
  step?: number
}

export async function startTestWalSender(
  dir: string,
  opts: TestWalSenderOptions = {},
): Promise<TestWalSender> {
  const wal = await scanWalDir(dir)
  const step = opts.step ?? 256 * 1024
  const files = wal.segments.map((s) => path.join(dir, walFileName(wal.timeline, s, wal.segmentSize)))
  const bytes = Buffer.concat(await Promise.all(files.map((f) => readFile(f))))
  const start = segmentStart(wal.segments[0], wal.segmentSize)
  const end = start + bytes.length
  const settings: Record<string, string> = {
    wal_segment_size: formatWalSegmentSize(wal.segmentSize),
    data_directory_mode: '0700',
  }
  let flushLsn = Math.min(end, start + step)

  const state: TestWalSender = {
    port: 0,
    systemId: String(wal.systemId),
    timeline: wal.timeline,
    start,
    end,
    step,
    get flushLsn() {
      return flushLsn
    },
    commands: [],
    statuses: [],
    feedback: [],
    sent: [],
    errors: [],
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }

  async function stream(conn: PgServerConnection, cmd: ReplicationCommand & { kind: 'startReplication' }) {
    if (cmd.timeline !== null && cmd.timeline !== wal.timeline) {
      throw new ReplicationCommandError(
        `requested timeline ${cmd.timeline} is not in this server's history`,
        'XX000',
      )
    }
    if (cmd.start < start || cmd.start > flushLsn) {
      throw new ReplicationCommandError(`requested starting point ${cmd.start} is not served`, 'XX000')
    }
    beginStreaming(conn)
    let clientDone = false
    let closed = false
    let wake: () => void = () => {}
    const event = () => new Promise<void>((resolve) => (wake = resolve))
    let pending = event()
    const reader = (async () => {
      for (;;) {
        const msg = await conn.next()
        if (msg === null || msg.type === 'terminate') closed = true
        else if (msg.type === 'copyDone') clientDone = true
        else if (msg.type === 'copyData') {
          const m = parseStandbyMessage(msg.data)
          if (m.kind === 'status') {
            const { kind: _, ...status } = m
            state.statuses.push(status)
          } else {
            const { kind: _, ...feedback } = m
            state.feedback.push(feedback)
          }
        } else throw new Error(`unexpected ${msg.type} message during START_REPLICATION`)
        wake()
        if (closed || clientDone) return
      }
    })()

    let sent = cmd.start
    let asked = false
    while (!clientDone && !closed && !conn.closed) {
      if (sent < flushLsn) {
        const upto = Math.min(flushLsn, sent + MAX_SEND_SIZE)
        conn.copyData(encodeXLogData(sent, flushLsn, bytes.subarray(sent - start, upto - start)))
        state.sent.push([sent, upto])
        sent = upto
        asked = false
        await conn.drain()
        continue
      }
      const written = state.statuses.at(-1)?.write ?? 0
      if (written >= flushLsn && flushLsn < end) {
        // The receiver has everything: new WAL "arrives".
        flushLsn = Math.min(end, flushLsn + step)
        continue
      }
      if (!asked) {
        conn.copyData(encodePrimaryKeepalive({ walEnd: flushLsn, replyRequested: true }))
        conn.flush()
        asked = true
      }
      await pending
      pending = event()
    }
    await reader
    if (clientDone && !conn.closed) {
      conn.copyDone()
      endStreaming(conn)
    }
  }

  async function execute(conn: PgServerConnection, sql: string): Promise<void> {
    const cmd = parseReplicationCommand(sql)
    switch (cmd.kind) {
      case 'identifySystem':
        sendIdentifySystem(conn, {
          systemId: state.systemId,
          timeline: wal.timeline,
          xlogpos: flushLsn,
          dbname: null,
        })
        break
      case 'show': {
        const value = settings[cmd.name]
        if (value === undefined) {
          throw new ReplicationCommandError(`unrecognized configuration parameter "${cmd.name}"`, '42704')
        }
        sendShow(conn, cmd.name, value)
        break
      }
      case 'timelineHistory':
        // One timeline: like Postgres, there is no history file to send.
        throw new ReplicationCommandError(
          `could not open file "pg_wal/${cmd.timeline.toString(16).toUpperCase().padStart(8, '0')}.history"`,
          '58P01',
        )
      case 'startReplication':
        await stream(conn, cmd)
        break
    }
  }

  async function serve(conn: PgServerConnection): Promise<void> {
    const params = await conn.startup()
    if (params === null) return
    if (replicationMode(params) !== 'physical') {
      conn.error({
        severity: 'FATAL',
        code: '28000',
        message: 'this server accepts replication connections only',
      })
      conn.close()
      return
    }
    for (;;) {
      const msg = await conn.next()
      if (msg === null || msg.type === 'terminate') return
      if (msg.type !== 'query') {
        conn.error({ code: '08P01', message: `unexpected ${msg.type} message` })
      } else {
        state.commands.push(msg.sql)
        try {
          await execute(conn, msg.sql)
        } catch (err) {
          if (!(err instanceof ReplicationCommandError)) throw err
          conn.error({ message: err.message, code: err.code, hint: err.hint })
        }
      }
      conn.readyForQuery()
    }
  }

  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    const conn = new PgServerConnection(socket)
    serve(conn).catch((err: unknown) => {
      state.errors.push(err)
      socket.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.port = (server.address() as net.AddressInfo).port
  return state
}
