/** Tablespace records: the pg_tblspc symlink target is created or removed outside any relation. */
import { XLOG_TBLSPC_CREATE, XLOG_TBLSPC_DROP, XLR_RMGR_INFO_MASK } from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export type TblspcRecord = { kind: 'create'; tsId: number; path: string } | { kind: 'drop'; tsId: number }

export function parseTblspcRecord(info: number, data: Buffer): TblspcRecord {
  const op = info & XLR_RMGR_INFO_MASK
  if (op === XLOG_TBLSPC_CREATE) {
    const r = new MainDataReader('TBLSPC CREATE', data)
    return { kind: 'create', tsId: r.u32('ts_id'), path: r.cstring('ts_path') }
  }
  if (op === XLOG_TBLSPC_DROP) {
    return { kind: 'drop', tsId: new MainDataReader('TBLSPC DROP', data).u32('ts_id') }
  }
  throw unknownOpError('TBLSPC', info)
}
