/**
 * MultiXact records: SLRU page zeroing, creation of a multixact with its members, and truncation of
 * pg_multixact/offsets and pg_multixact/members.
 */
import {
  XLOG_MULTIXACT_CREATE_ID,
  XLOG_MULTIXACT_TRUNCATE_ID,
  XLOG_MULTIXACT_ZERO_MEM_PAGE,
  XLOG_MULTIXACT_ZERO_OFF_PAGE,
  XLR_RMGR_INFO_MASK,
} from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

/** MultiXactStatus: the lock mode of one member; it is stored in the members SLRU next to the xid. */
export const MultiXactStatus = {
  ForKeyShare: 0,
  ForShare: 1,
  ForNoKeyUpdate: 2,
  ForUpdate: 3,
  NoKeyUpdate: 4,
  Update: 5,
} as const

const MAX_MULTIXACT_STATUS = MultiXactStatus.Update
const SIZEOF_MULTIXACT_MEMBER = 8

export interface MultiXactMember {
  xid: number
  status: number
}

export type MultiXactRecord =
  | { kind: 'zero_off_page'; pageno: number }
  | { kind: 'zero_mem_page'; pageno: number }
  | { kind: 'create_id'; mid: number; moff: number; members: MultiXactMember[] }
  | {
      kind: 'truncate_id'
      oldestMultiDb: number
      startTruncOff: number
      endTruncOff: number
      startTruncMemb: number
      endTruncMemb: number
    }

export function parseMultiXactRecord(info: number, data: Buffer): MultiXactRecord {
  const op = info & XLR_RMGR_INFO_MASK
  switch (op) {
    case XLOG_MULTIXACT_ZERO_OFF_PAGE:
      return {
        kind: 'zero_off_page',
        pageno: new MainDataReader('MULTIXACT ZERO_OFF_PAGE', data).i32('pageno'),
      }
    case XLOG_MULTIXACT_ZERO_MEM_PAGE:
      return {
        kind: 'zero_mem_page',
        pageno: new MainDataReader('MULTIXACT ZERO_MEM_PAGE', data).i32('pageno'),
      }
    case XLOG_MULTIXACT_CREATE_ID: {
      const r = new MainDataReader('MULTIXACT CREATE_ID', data)
      const mid = r.u32('mid')
      const moff = r.u32('moff')
      const n = r.count(r.i32('nmembers'), SIZEOF_MULTIXACT_MEMBER, 'members')
      const members: MultiXactMember[] = []
      for (let i = 0; i < n; i++) {
        const xid = r.u32('member xid')
        const status = r.u32('member status')
        if (status > MAX_MULTIXACT_STATUS) r.fail(`member ${i} has unknown status ${status}`)
        members.push({ xid, status })
      }
      return { kind: 'create_id', mid, moff, members }
    }
    case XLOG_MULTIXACT_TRUNCATE_ID: {
      const r = new MainDataReader('MULTIXACT TRUNCATE_ID', data)
      return {
        kind: 'truncate_id',
        oldestMultiDb: r.u32('oldestMultiDB'),
        startTruncOff: r.u32('startTruncOff'),
        endTruncOff: r.u32('endTruncOff'),
        startTruncMemb: r.u32('startTruncMemb'),
        endTruncMemb: r.u32('endTruncMemb'),
      }
    }
    default:
      throw unknownOpError('MULTIXACT', info)
  }
}
