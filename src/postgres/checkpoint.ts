/**
 * CheckPoint (PG15 `CheckPoint` struct, 88 bytes): the main data of XLOG CHECKPOINT_SHUTDOWN /
 * CHECKPOINT_ONLINE records and the `checkPointCopy` inside pg_control. Padding bytes are written as zero,
 * which makes a re-encoded checkpoint byte-identical to Postgres' own.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { type Lsn, readLsn, writeLsn } from './lsn.js'

export const SIZEOF_CHECKPOINT = 88

const OFF = {
  redo: 0,
  ThisTimeLineID: 8,
  PrevTimeLineID: 12,
  fullPageWrites: 16,
  nextXid: 24,
  nextOid: 32,
  nextMulti: 36,
  nextMultiOffset: 40,
  oldestXid: 44,
  oldestXidDB: 48,
  oldestMulti: 52,
  oldestMultiDB: 56,
  time: 64,
  oldestCommitTsXid: 72,
  newestCommitTsXid: 76,
  oldestActiveXid: 80,
} as const

export interface CheckPoint {
  redo: Lsn
  thisTimeLineId: number
  prevTimeLineId: number
  fullPageWrites: boolean
  /** FullTransactionId: epoch in the high 32 bits, xid in the low 32 bits (fits 2^53 while epoch < 2^21). */
  nextXid: number
  nextOid: number
  nextMulti: number
  nextMultiOffset: number
  oldestXid: number
  oldestXidDb: number
  oldestMulti: number
  oldestMultiDb: number
  /** Seconds since the Unix epoch. */
  time: number
  oldestCommitTsXid: number
  newestCommitTsXid: number
  oldestActiveXid: number
}

export class CheckPointFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'CheckPointFormatError'
}

export function decodeCheckPoint(buf: Buffer, offset = 0): CheckPoint {
  if (buf.length - offset < SIZEOF_CHECKPOINT) {
    throw new CheckPointFormatError(`CheckPoint needs ${SIZEOF_CHECKPOINT} bytes, got ${buf.length - offset}`)
  }
  const u32 = (o: number) => buf.readUInt32LE(offset + o)
  return {
    redo: readLsn(buf, offset + OFF.redo),
    thisTimeLineId: u32(OFF.ThisTimeLineID),
    prevTimeLineId: u32(OFF.PrevTimeLineID),
    fullPageWrites: buf[offset + OFF.fullPageWrites] !== 0,
    nextXid: u32(OFF.nextXid + 4) * 0x1_0000_0000 + u32(OFF.nextXid),
    nextOid: u32(OFF.nextOid),
    nextMulti: u32(OFF.nextMulti),
    nextMultiOffset: u32(OFF.nextMultiOffset),
    oldestXid: u32(OFF.oldestXid),
    oldestXidDb: u32(OFF.oldestXidDB),
    oldestMulti: u32(OFF.oldestMulti),
    oldestMultiDb: u32(OFF.oldestMultiDB),
    time: Number(buf.readBigInt64LE(offset + OFF.time)),
    oldestCommitTsXid: u32(OFF.oldestCommitTsXid),
    newestCommitTsXid: u32(OFF.newestCommitTsXid),
    oldestActiveXid: u32(OFF.oldestActiveXid),
  }
}

export function encodeCheckPoint(
  cp: CheckPoint,
  out: Buffer = Buffer.alloc(SIZEOF_CHECKPOINT),
  offset = 0,
): Buffer {
  out.fill(0, offset, offset + SIZEOF_CHECKPOINT)
  writeLsn(out, offset + OFF.redo, cp.redo)
  out.writeUInt32LE(cp.thisTimeLineId, offset + OFF.ThisTimeLineID)
  out.writeUInt32LE(cp.prevTimeLineId, offset + OFF.PrevTimeLineID)
  out[offset + OFF.fullPageWrites] = cp.fullPageWrites ? 1 : 0
  const epoch = Math.floor(cp.nextXid / 0x1_0000_0000)
  out.writeUInt32LE(cp.nextXid - epoch * 0x1_0000_0000, offset + OFF.nextXid)
  out.writeUInt32LE(epoch, offset + OFF.nextXid + 4)
  out.writeUInt32LE(cp.nextOid, offset + OFF.nextOid)
  out.writeUInt32LE(cp.nextMulti, offset + OFF.nextMulti)
  out.writeUInt32LE(cp.nextMultiOffset, offset + OFF.nextMultiOffset)
  out.writeUInt32LE(cp.oldestXid, offset + OFF.oldestXid)
  out.writeUInt32LE(cp.oldestXidDb, offset + OFF.oldestXidDB)
  out.writeUInt32LE(cp.oldestMulti, offset + OFF.oldestMulti)
  out.writeUInt32LE(cp.oldestMultiDb, offset + OFF.oldestMultiDB)
  out.writeBigInt64LE(BigInt(cp.time), offset + OFF.time)
  out.writeUInt32LE(cp.oldestCommitTsXid, offset + OFF.oldestCommitTsXid)
  out.writeUInt32LE(cp.newestCommitTsXid, offset + OFF.newestCommitTsXid)
  out.writeUInt32LE(cp.oldestActiveXid, offset + OFF.oldestActiveXid)
  return out
}
