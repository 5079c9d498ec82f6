/**
 * Storage manager records: creation of an empty relation fork and truncation of a relation. Neither carries
 * block references, so their effect on relation sizes must be applied natively.
 */

import type { RelFileNode } from '../relfile.js'
import { XLOG_SMGR_CREATE, XLOG_SMGR_TRUNCATE, XLR_RMGR_INFO_MASK } from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

/** Which forks a TRUNCATE applies to. */
export const SMGR_TRUNCATE_HEAP = 0x0001
export const SMGR_TRUNCATE_VM = 0x0002
export const SMGR_TRUNCATE_FSM = 0x0004
export const SMGR_TRUNCATE_ALL = SMGR_TRUNCATE_HEAP | SMGR_TRUNCATE_VM | SMGR_TRUNCATE_FSM

const MAX_FORKNUM = 3

export type SmgrRecord =
  | { kind: 'create'; rnode: RelFileNode; forkNum: number }
  /** `blkno` is the new length of the main fork in blocks. */
  | { kind: 'truncate'; blkno: number; rnode: RelFileNode; flags: number }

export function parseSmgrRecord(info: number, data: Buffer): SmgrRecord {
  const op = info & XLR_RMGR_INFO_MASK
  if (op === XLOG_SMGR_CREATE) {
    const r = new MainDataReader('SMGR CREATE', data)
    const rnode = r.relFileNode('rnode')
    const forkNum = r.i32('forkNum')
    if (forkNum < 0 || forkNum > MAX_FORKNUM) r.fail(`forkNum ${forkNum} is not a fork (0..${MAX_FORKNUM})`)
    return { kind: 'create', rnode, forkNum }
  }
  if (op === XLOG_SMGR_TRUNCATE) {
    const r = new MainDataReader('SMGR TRUNCATE', data)
    return { kind: 'truncate', blkno: r.u32('blkno'), rnode: r.relFileNode('rnode'), flags: r.i32('flags') }
  }
  throw unknownOpError('SMGR', info)
}

/** SMGR CREATE's main data (xl_smgr_create): the relation and the fork made. */
export function encodeSmgrCreate(rnode: RelFileNode, forkNum: number): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt32LE(rnode.spcNode, 0)
  b.writeUInt32LE(rnode.dbNode, 4)
  b.writeUInt32LE(rnode.relNode, 8)
  b.writeInt32LE(forkNum, 12)
  return b
}
