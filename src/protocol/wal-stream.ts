/**
 * The sending half of START_REPLICATION, as a walsender runs it once the connection is in COPY BOTH:
 * WAL from a source goes out as XLogData of at most MAX_SEND_SIZE bytes, as far as the source allows at
 * that moment (a safekeeper: commit_lsn); when there is nothing to send it waits for the source to grow
 * and sends a keepalive every `keepaliveMs`, asking for a reply, so the receiver can tell a quiet
 * walsender from a dead one. What the receiver sends — standby status updates and hot standby feedback
 * — is handed to the caller as it arrives. The stream ends when the receiver sends CopyDone (answered
 * with CopyDone and the two CommandCompletes Postgres sends), when the connection goes, or when `stop`
 * resolves.
 */
import type { Lsn } from '../postgres/lsn.js'
import { ProtocolError } from './errors.js'
import {
  encodePrimaryKeepalive,
  encodeXLogData,
  type HotStandbyFeedback,
  parseStandbyMessage,
  type StandbyStatusUpdate,
} from './replication.js'
import { beginStreaming, endStreaming } from './replication-commands.js'
import type { PgServerConnection } from './server.js'

/** Postgres' MAX_SEND_SIZE: 16 WAL pages per XLogData message. */
export const MAX_SEND_SIZE = 16 * 8192

export interface WalSource {
  /** The end of the WAL that may be sent now. */
  limit(): Lsn
  /** WAL bytes from `lsn`, at most `maxBytes`, all below limit(). */
  read(lsn: Lsn, maxBytes: number): Buffer
  /** Resolves when limit() may have moved, or after `ms` at the latest. */
  waitForMore(ms: number): Promise<void>
}

export interface WalStreamOptions {
  start: Lsn
  keepaliveMs: number
  onStatus?: (s: StandbyStatusUpdate) => void
  onFeedback?: (f: HotStandbyFeedback) => void
  /** Hears each XLogData sent: its end. */
  onSent?: (end: Lsn) => void
  /** Ends the stream from our side (the server is shutting down). */
  stop?: Promise<void>
}

/** Streams WAL from `opts.start` until the receiver is done; resolves with the end of what was sent. */
export async function streamWal(
  conn: PgServerConnection,
  source: WalSource,
  opts: WalStreamOptions,
): Promise<Lsn> {
  beginStreaming(conn)
  let receiverDone = false
  let gone = false
  let stopped = false
  void opts.stop?.then(() => {
    stopped = true
  })
  const reader = (async () => {
    for (;;) {
      const msg = await conn.next()
      if (msg === null || msg.type === 'terminate') {
        gone = true
        return
      }
      if (msg.type === 'copyDone') {
        receiverDone = true
        return
      }
      if (msg.type !== 'copyData')
        throw new ProtocolError(`unexpected ${msg.type} message during START_REPLICATION`)
      const m = parseStandbyMessage(msg.data)
      if (m.kind === 'status') opts.onStatus?.(m)
      else opts.onFeedback?.(m)
    }
  })()
  // The reader ends the stream when it fails (a malformed status update): the loop sees `gone`.
  const readerDone = reader.then(
    () => undefined,
    (err: unknown) => {
      gone = true
      return err
    },
  )

  let sent = opts.start
  let lastKeepalive = 0
  const ended = () => receiverDone || gone || stopped || conn.closed
  while (!ended()) {
    const limit = source.limit()
    if (sent < limit) {
      const data = source.read(sent, Math.min(MAX_SEND_SIZE, limit - sent))
      conn.copyData(encodeXLogData(sent, limit, data))
      sent += data.length
      opts.onSent?.(sent)
      await conn.drain()
      continue
    }
    if (Date.now() - lastKeepalive >= opts.keepaliveMs) {
      conn.copyData(encodePrimaryKeepalive({ walEnd: sent, replyRequested: true }))
      conn.flush()
      lastKeepalive = Date.now()
    }
    await Promise.race([source.waitForMore(opts.keepaliveMs), readerDone, opts.stop])
  }
  if (receiverDone && !conn.closed) {
    conn.copyDone()
    endStreaming(conn)
  } else if (!conn.closed) {
    conn.close()
  }
  const failure = await readerDone
  if (failure) throw failure
  return sent
}
