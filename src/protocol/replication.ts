/**
 * Physical streaming replication messages, carried as CopyData payloads once START_REPLICATION has switched
 * the connection to COPY BOTH mode: the walsender sends XLogData ('w') and primary keepalives ('k'), the
 * receiver answers with standby status updates ('r') and, with hot_standby_feedback on, hot standby feedback
 * ('h'). Both ends are here: the pageserver receives, and a safekeeper also sends. Unlike WAL itself, these are big-endian, and their
 * clocks count microseconds since 2000-01-01 00:00 UTC, Postgres' epoch.
 */
import { assertLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import { pgNowUs } from '../postgres/timestamp.js'
import { ProtocolError } from './errors.js'

/** Byte offsets inside the replication payloads (after the CopyData framing). */
export const REPLICATION_LAYOUT = {
  /** XLogData: Byte1 'w', Int64 walStart, Int64 walEnd, Int64 sendTime, then WAL bytes. */
  XLOG_DATA_WAL_START: 1,
  XLOG_DATA_WAL_END: 9,
  XLOG_DATA_SEND_TIME: 17,
  XLOG_DATA_HEADER_SIZE: 25,
  /** Primary keepalive: Byte1 'k', Int64 walEnd, Int64 sendTime, Byte1 replyRequested. */
  KEEPALIVE_WAL_END: 1,
  KEEPALIVE_SEND_TIME: 9,
  KEEPALIVE_REPLY_REQUESTED: 17,
  KEEPALIVE_SIZE: 18,
  /** Standby status update: Byte1 'r', Int64 write, Int64 flush, Int64 apply, Int64 clock, Byte1 reply. */
  STATUS_WRITE: 1,
  STATUS_FLUSH: 9,
  STATUS_APPLY: 17,
  STATUS_CLOCK: 25,
  STATUS_REPLY_REQUESTED: 33,
  STATUS_SIZE: 34,
  /** Hot standby feedback: Byte1 'h', Int64 clock, Int32 xmin, Int32 xmin epoch, Int32 catalog_xmin,
   * Int32 catalog_xmin epoch. */
  HSF_CLOCK: 1,
  HSF_XMIN: 9,
  HSF_XMIN_EPOCH: 13,
  HSF_CATALOG_XMIN: 17,
  HSF_CATALOG_XMIN_EPOCH: 21,
  HSF_SIZE: 25,
} as const

export const XLOG_DATA_TAG = 'w'
export const PRIMARY_KEEPALIVE_TAG = 'k'
export const STANDBY_STATUS_UPDATE_TAG = 'r'
export const HOT_STANDBY_FEEDBACK_TAG = 'h'

const TWO_32 = 0x1_0000_0000

/** Reads a big-endian uint64 LSN; values above 2^53 cannot be LSNs of ours and mean a broken stream. */
export function readLsnBE(buf: Buffer, offset: number): Lsn {
  const hi = buf.readUInt32BE(offset)
  const lo = buf.readUInt32BE(offset + 4)
  if (hi >= 0x20_0000) {
    throw new ProtocolError(`LSN ${hi.toString(16)}/${lo.toString(16)} at offset ${offset} is above 2^53`)
  }
  return hi * TWO_32 + lo
}

export function writeLsnBE(buf: Buffer, offset: number, lsn: Lsn): void {
  assertLsn(lsn)
  const hi = Math.floor(lsn / TWO_32)
  buf.writeUInt32BE(hi, offset)
  buf.writeUInt32BE(lsn - hi * TWO_32, offset + 4)
}

function expectTag(buf: Buffer, tag: string, what: string, minSize: number): void {
  if (buf.length === 0 || buf[0] !== tag.charCodeAt(0)) {
    const got = buf.length === 0 ? 'an empty payload' : `tag ${JSON.stringify(String.fromCharCode(buf[0]))}`
    throw new ProtocolError(`expected ${what} (tag '${tag}'), got ${got}`)
  }
  if (buf.length < minSize) throw new ProtocolError(`${what} is ${buf.length} bytes, expected ${minSize}`)
}

export interface XLogData {
  /** LSN of the first byte of `data`. */
  walStart: Lsn
  /** The server's current end of WAL. */
  walEnd: Lsn
  sendTimeUs: bigint
  /** WAL bytes: a view of the payload, not a copy. */
  data: Buffer
}

export function parseXLogData(buf: Buffer): XLogData {
  const L = REPLICATION_LAYOUT
  expectTag(buf, XLOG_DATA_TAG, 'XLogData', L.XLOG_DATA_HEADER_SIZE)
  return {
    walStart: readLsnBE(buf, L.XLOG_DATA_WAL_START),
    walEnd: readLsnBE(buf, L.XLOG_DATA_WAL_END),
    sendTimeUs: buf.readBigInt64BE(L.XLOG_DATA_SEND_TIME),
    data: buf.subarray(L.XLOG_DATA_HEADER_SIZE),
  }
}

/** Builds an XLogData payload, as a walsender would (for tests and for serving replication ourselves). */
export function encodeXLogData(
  walStart: Lsn,
  walEnd: Lsn,
  data: Buffer,
  sendTimeUs: bigint = pgNowUs(),
): Buffer {
  const L = REPLICATION_LAYOUT
  const buf = Buffer.allocUnsafe(L.XLOG_DATA_HEADER_SIZE + data.length)
  buf[0] = XLOG_DATA_TAG.charCodeAt(0)
  writeLsnBE(buf, L.XLOG_DATA_WAL_START, walStart)
  writeLsnBE(buf, L.XLOG_DATA_WAL_END, walEnd)
  buf.writeBigInt64BE(sendTimeUs, L.XLOG_DATA_SEND_TIME)
  data.copy(buf, L.XLOG_DATA_HEADER_SIZE)
  return buf
}

export interface PrimaryKeepalive {
  walEnd: Lsn
  sendTimeUs: bigint
  /** The walsender disconnects us after wal_sender_timeout unless we answer soon. */
  replyRequested: boolean
}

export function parsePrimaryKeepalive(buf: Buffer): PrimaryKeepalive {
  const L = REPLICATION_LAYOUT
  expectTag(buf, PRIMARY_KEEPALIVE_TAG, 'primary keepalive', L.KEEPALIVE_SIZE)
  return {
    walEnd: readLsnBE(buf, L.KEEPALIVE_WAL_END),
    sendTimeUs: buf.readBigInt64BE(L.KEEPALIVE_SEND_TIME),
    replyRequested: buf[L.KEEPALIVE_REPLY_REQUESTED] !== 0,
  }
}

/** Builds a primary keepalive payload, as a walsender sends it when it has no WAL to send or wants an answer. */
export function encodePrimaryKeepalive(keepalive: {
  walEnd: Lsn
  sendTimeUs?: bigint
  replyRequested: boolean
}): Buffer {
  const L = REPLICATION_LAYOUT
  const buf = Buffer.allocUnsafe(L.KEEPALIVE_SIZE)
  buf[0] = PRIMARY_KEEPALIVE_TAG.charCodeAt(0)
  writeLsnBE(buf, L.KEEPALIVE_WAL_END, keepalive.walEnd)
  buf.writeBigInt64BE(keepalive.sendTimeUs ?? pgNowUs(), L.KEEPALIVE_SEND_TIME)
  buf[L.KEEPALIVE_REPLY_REQUESTED] = keepalive.replyRequested ? 1 : 0
  return buf
}

export type ReplicationMessage =
  | ({ kind: 'xlogData' } & XLogData)
  | ({ kind: 'keepalive' } & PrimaryKeepalive)

/** Dispatches a walsender payload on its tag. */
export function parseReplicationMessage(buf: Buffer): ReplicationMessage {
  const tag = buf.length > 0 ? String.fromCharCode(buf[0]) : ''
  if (tag === XLOG_DATA_TAG) return { kind: 'xlogData', ...parseXLogData(buf) }
  if (tag === PRIMARY_KEEPALIVE_TAG) return { kind: 'keepalive', ...parsePrimaryKeepalive(buf) }
  throw new ProtocolError(
    `unknown replication message tag ${JSON.stringify(tag)} in a ${buf.length}-byte payload`,
  )
}

export interface StandbyStatus {
  /** Last WAL byte + 1 received and written to disk. */
  write: Lsn
  /** Last WAL byte + 1 flushed to disk. */
  flush: Lsn
  /** Last WAL byte + 1 applied (replay_lsn in pg_stat_replication). */
  apply: Lsn
  /** Asks the walsender to answer with a keepalive right away. */
  replyRequested?: boolean
  /** Defaults to now. */
  nowUs?: bigint
}

export function encodeStandbyStatusUpdate(status: StandbyStatus): Buffer {
  const L = REPLICATION_LAYOUT
  const buf = Buffer.allocUnsafe(L.STATUS_SIZE)
  buf[0] = STANDBY_STATUS_UPDATE_TAG.charCodeAt(0)
  writeLsnBE(buf, L.STATUS_WRITE, status.write)
  writeLsnBE(buf, L.STATUS_FLUSH, status.flush)
  writeLsnBE(buf, L.STATUS_APPLY, status.apply)
  buf.writeBigInt64BE(status.nowUs ?? pgNowUs(), L.STATUS_CLOCK)
  buf[L.STATUS_REPLY_REQUESTED] = status.replyRequested ? 1 : 0
  return buf
}

export interface IdentifySystem {
  /** The cluster's system identifier, a uint64 in decimal. */
  systemId: string
  timeline: number
  /** The current WAL flush position. */
  xlogpos: Lsn
  /** Null unless the replication connection names a database (logical replication). */
  dbname: string | null
}

/** Interprets the one-row result of IDENTIFY_SYSTEM, by column name. */
export function parseIdentifySystem(result: { fields: string[]; rows: (string | null)[][] }): IdentifySystem {
  const column = (name: string): number => {
    const i = result.fields.indexOf(name)
    if (i < 0)
      throw new ProtocolError(
        `IDENTIFY_SYSTEM result has no ${name} column (got ${result.fields.join(', ')})`,
      )
    return i
  }
  if (result.rows.length !== 1) {
    throw new ProtocolError(`IDENTIFY_SYSTEM returned ${result.rows.length} rows, expected 1`)
  }
  const row = result.rows[0]
  const systemId = row[column('systemid')]
  const timeline = row[column('timeline')]
  const xlogpos = row[column('xlogpos')]
  if (systemId === null || timeline === null || xlogpos === null || !/^\d+$/.test(systemId)) {
    throw new ProtocolError(`IDENTIFY_SYSTEM returned an incomplete row: ${JSON.stringify(row)}`)
  }
  const tli = Number(timeline)
  if (!Number.isInteger(tli) || tli < 1)
    throw new ProtocolError(`IDENTIFY_SYSTEM timeline ${timeline} is invalid`)
  return { systemId, timeline: tli, xlogpos: parseLsn(xlogpos), dbname: row[column('dbname')] }
}

/**
 * A standby status update as a walsender receives it. A position the receiver does not track is 0
 * (InvalidXLogRecPtr): pg_receivewal never reports apply, and reports flush only with --synchronous or a slot.
 */
export interface StandbyStatusUpdate {
  write: Lsn
  flush: Lsn
  apply: Lsn
  /** The receiver's clock when it sent the update, microseconds since Postgres' epoch. */
  clockUs: bigint
  /** The receiver wants a keepalive back at once. */
  replyRequested: boolean
}

export function parseStandbyStatusUpdate(buf: Buffer): StandbyStatusUpdate {
  const L = REPLICATION_LAYOUT
  expectTag(buf, STANDBY_STATUS_UPDATE_TAG, 'standby status update', L.STATUS_SIZE)
  return {
    write: readLsnBE(buf, L.STATUS_WRITE),
    flush: readLsnBE(buf, L.STATUS_FLUSH),
    apply: readLsnBE(buf, L.STATUS_APPLY),
    clockUs: buf.readBigInt64BE(L.STATUS_CLOCK),
    replyRequested: buf[L.STATUS_REPLY_REQUESTED] !== 0,
  }
}

/**
 * What a standby with hot_standby_feedback = on reports about its oldest snapshot, so that the primary keeps
 * the rows its queries still see. An xmin of 0 (InvalidTransactionId) means the standby holds no snapshot,
 * which is also what it sends once when the setting is turned off.
 */
export interface HotStandbyFeedback {
  clockUs: bigint
  xmin: number
  xminEpoch: number
  catalogXmin: number
  catalogXminEpoch: number
}

/** Parsed rather than skipped: a walsender that feeds a primary (a safekeeper) may have to pass it on. */
export function parseHotStandbyFeedback(buf: Buffer): HotStandbyFeedback {
  const L = REPLICATION_LAYOUT
  expectTag(buf, HOT_STANDBY_FEEDBACK_TAG, 'hot standby feedback', L.HSF_SIZE)
  return {
    clockUs: buf.readBigInt64BE(L.HSF_CLOCK),
    xmin: buf.readUInt32BE(L.HSF_XMIN),
    xminEpoch: buf.readUInt32BE(L.HSF_XMIN_EPOCH),
    catalogXmin: buf.readUInt32BE(L.HSF_CATALOG_XMIN),
    catalogXminEpoch: buf.readUInt32BE(L.HSF_CATALOG_XMIN_EPOCH),
  }
}

export type StandbyMessage =
  | ({ kind: 'status' } & StandbyStatusUpdate)
  | ({ kind: 'hotStandbyFeedback' } & HotStandbyFeedback)

/**
 * Dispatches a receiver's CopyData payload on its tag. Any other tag is a broken peer, as in Postgres, which
 * ends the walsender with "invalid standby message type".
 */
export function parseStandbyMessage(buf: Buffer): StandbyMessage {
  const tag = buf.length > 0 ? String.fromCharCode(buf[0]) : ''
  if (tag === STANDBY_STATUS_UPDATE_TAG) return { kind: 'status', ...parseStandbyStatusUpdate(buf) }
  if (tag === HOT_STANDBY_FEEDBACK_TAG) return { kind: 'hotStandbyFeedback', ...parseHotStandbyFeedback(buf) }
  throw new ProtocolError(
    `invalid standby message type ${JSON.stringify(tag)} in a ${buf.length}-byte payload`,
  )
}
