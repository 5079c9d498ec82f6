/**
 * CLOG (pg_xact) and CommitTs (pg_commit_ts) records. Both SLRUs log only page zeroing and truncation;
 * transaction status itself is set by replaying commit/abort records.
 */
import { CLOG_TRUNCATE, CLOG_ZEROPAGE, XLR_RMGR_INFO_MASK } from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export const COMMIT_TS_ZEROPAGE = 0x00
export const COMMIT_TS_TRUNCATE = 0x10

export type ClogRecord =
  | { kind: 'zeropage'; pageno: number }
  | { kind: 'truncate'; pageno: number; oldestXact: number; oldestXactDb: number }

export type CommitTsRecord =
  | { kind: 'zeropage'; pageno: number }
  | { kind: 'truncate'; pageno: number; oldestXid: number }

export function parseClogRecord(info: number, data: Buffer): ClogRecord {
  const op = info & XLR_RMGR_INFO_MASK
  if (op === CLOG_ZEROPAGE) {
    return { kind: 'zeropage', pageno: new MainDataReader('CLOG ZEROPAGE', data).i32('pageno') }
  }
  if (op === CLOG_TRUNCATE) {
    const r = new MainDataReader('CLOG TRUNCATE', data)
    return {
      kind: 'truncate',
      pageno: r.i32('pageno'),
      oldestXact: r.u32('oldestXact'),
      oldestXactDb: r.u32('oldestXactDb'),
    }
  }
  throw unknownOpError('CLOG', info)
}

export function parseCommitTsRecord(info: number, data: Buffer): CommitTsRecord {
  const op = info & XLR_RMGR_INFO_MASK
  if (op === COMMIT_TS_ZEROPAGE) {
    return { kind: 'zeropage', pageno: new MainDataReader('COMMIT_TS ZEROPAGE', data).i32('pageno') }
  }
  if (op === COMMIT_TS_TRUNCATE) {
    const r = new MainDataReader('COMMIT_TS TRUNCATE', data)
    return { kind: 'truncate', pageno: r.i32('pageno'), oldestXid: r.u32('oldestXid') }
  }
  throw unknownOpError('COMMIT_TS', info)
}

/** CLOG ZEROPAGE's main data, as ExtendCLOG logs it: the page number. */
export function encodeClogZeroPage(pageno: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32LE(pageno)
  return b
}
