/**
 * Database records: directory-level operations whose effects no block reference describes.
 * CREATE_FILE_COPY in particular means "copy the source database's files as of this LSN".
 */
import {
  XLOG_DBASE_CREATE_FILE_COPY,
  XLOG_DBASE_CREATE_WAL_LOG,
  XLOG_DBASE_DROP,
  XLR_RMGR_INFO_MASK,
} from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export type DbaseRecord =
  | { kind: 'create_file_copy'; dbId: number; tablespaceId: number; srcDbId: number; srcTablespaceId: number }
  /** Only the directory and PG_VERSION; the contents follow as XLOG FPI records and a RelMap UPDATE. */
  | { kind: 'create_wal_log'; dbId: number; tablespaceId: number }
  | { kind: 'drop'; dbId: number; tablespaceIds: number[] }

export function parseDbaseRecord(info: number, data: Buffer): DbaseRecord {
  const op = info & XLR_RMGR_INFO_MASK
  switch (op) {
    case XLOG_DBASE_CREATE_FILE_COPY: {
      const r = new MainDataReader('DBASE CREATE_FILE_COPY', data)
      return {
        kind: 'create_file_copy',
        dbId: r.u32('db_id'),
        tablespaceId: r.u32('tablespace_id'),
        srcDbId: r.u32('src_db_id'),
        srcTablespaceId: r.u32('src_tablespace_id'),
      }
    }
    case XLOG_DBASE_CREATE_WAL_LOG: {
      const r = new MainDataReader('DBASE CREATE_WAL_LOG', data)
      return { kind: 'create_wal_log', dbId: r.u32('db_id'), tablespaceId: r.u32('tablespace_id') }
    }
    case XLOG_DBASE_DROP: {
      const r = new MainDataReader('DBASE DROP', data)
      const dbId = r.u32('db_id')
      const n = r.count(r.i32('ntablespaces'), 4, 'tablespace ids')
      return { kind: 'drop', dbId, tablespaceIds: r.u32Array(n, 'tablespace ids') }
    }
    default:
      throw unknownOpError('DBASE', info)
  }
}
