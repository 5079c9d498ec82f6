import { describe, expect, it } from 'vitest'
import {
  RM_BRIN_ID,
  RM_BTREE_ID,
  RM_CLOG_ID,
  RM_COMMIT_TS_ID,
  RM_DBASE_ID,
  RM_GENERIC_ID,
  RM_GIN_ID,
  RM_GIST_ID,
  RM_HASH_ID,
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_LOGICALMSG_ID,
  RM_MULTIXACT_ID,
  RM_RELMAP_ID,
  RM_REPLORIGIN_ID,
  RM_SEQ_ID,
  RM_SMGR_ID,
  RM_SPGIST_ID,
  RM_STANDBY_ID,
  RM_TBLSPC_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  RMGR_NAMES,
  recordTypeName,
  rmgrIdIsValid,
  rmgrName,
  XLOG_HEAP_INIT_PAGE,
  XLOG_HEAP_INSERT,
  XLOG_HEAP2_MULTI_INSERT,
  XLOG_XACT_COMMIT,
  XLOG_XACT_HAS_INFO,
  XLR_CHECK_CONSISTENCY,
  XLR_SPECIAL_REL_UPDATE,
} from '../../src/postgres/rmgr.js'

/** [rmid, raw xl_info, what pg_waldump prints after "desc: "] */
type Case = [number, number, string]

const CASES: Record<string, Case[]> = {
  XLOG: [
    [RM_XLOG_ID, 0x00, 'CHECKPOINT_SHUTDOWN'],
    [RM_XLOG_ID, 0x10, 'CHECKPOINT_ONLINE'],
    [RM_XLOG_ID, 0x20, 'NOOP'],
    [RM_XLOG_ID, 0x30, 'NEXTOID'],
    [RM_XLOG_ID, 0x40, 'SWITCH'],
    [RM_XLOG_ID, 0x50, 'BACKUP_END'],
    [RM_XLOG_ID, 0x60, 'PARAMETER_CHANGE'],
    [RM_XLOG_ID, 0x70, 'RESTORE_POINT'],
    [RM_XLOG_ID, 0x80, 'FPW_CHANGE'],
    [RM_XLOG_ID, 0x90, 'END_OF_RECOVERY'],
    [RM_XLOG_ID, 0xa0, 'FPI_FOR_HINT'],
    [RM_XLOG_ID, 0xb0, 'FPI'],
    [RM_XLOG_ID, 0xc0, 'UNKNOWN (c0)'],
    [RM_XLOG_ID, 0xd0, 'OVERWRITE_CONTRECORD'],
    [RM_XLOG_ID, 0xe0, 'UNKNOWN (e0)'],
    [RM_XLOG_ID, 0xf3, 'UNKNOWN (f0)'],
  ],
  Transaction: [
    [RM_XACT_ID, 0x00, 'COMMIT'],
    [RM_XACT_ID, 0x80, 'COMMIT'],
    [RM_XACT_ID, 0x81, 'COMMIT'],
    [RM_XACT_ID, 0x10, 'PREPARE'],
    [RM_XACT_ID, 0x20, 'ABORT'],
    [RM_XACT_ID, 0xa1, 'ABORT'],
    [RM_XACT_ID, 0x30, 'COMMIT_PREPARED'],
    [RM_XACT_ID, 0xb0, 'COMMIT_PREPARED'],
    [RM_XACT_ID, 0x40, 'ABORT_PREPARED'],
    [RM_XACT_ID, 0x50, 'ASSIGNMENT'],
    [RM_XACT_ID, 0x60, 'INVALIDATION'],
    [RM_XACT_ID, 0x70, 'UNKNOWN (70)'],
    [RM_XACT_ID, 0xf0, 'UNKNOWN (f0)'],
  ],
  Storage: [
    [RM_SMGR_ID, 0x11, 'CREATE'],
    [RM_SMGR_ID, 0x21, 'TRUNCATE'],
    [RM_SMGR_ID, 0x00, 'UNKNOWN (0)'],
  ],
  CLOG: [
    [RM_CLOG_ID, 0x00, 'ZEROPAGE'],
    [RM_CLOG_ID, 0x10, 'TRUNCATE'],
    [RM_CLOG_ID, 0x20, 'UNKNOWN (20)'],
  ],
  Database: [
    [RM_DBASE_ID, 0x01, 'CREATE_FILE_COPY'],
    [RM_DBASE_ID, 0x10, 'CREATE_WAL_LOG'],
    [RM_DBASE_ID, 0x21, 'DROP'],
    [RM_DBASE_ID, 0x30, 'UNKNOWN (30)'],
  ],
  Tablespace: [
    [RM_TBLSPC_ID, 0x00, 'CREATE'],
    [RM_TBLSPC_ID, 0x10, 'DROP'],
    [RM_TBLSPC_ID, 0x20, 'UNKNOWN (20)'],
  ],
  MultiXact: [
    [RM_MULTIXACT_ID, 0x00, 'ZERO_OFF_PAGE'],
    [RM_MULTIXACT_ID, 0x10, 'ZERO_MEM_PAGE'],
    [RM_MULTIXACT_ID, 0x20, 'CREATE_ID'],
    [RM_MULTIXACT_ID, 0x30, 'TRUNCATE_ID'],
    [RM_MULTIXACT_ID, 0x40, 'UNKNOWN (40)'],
  ],
  RelMap: [
    [RM_RELMAP_ID, 0x00, 'UPDATE'],
    [RM_RELMAP_ID, 0x10, 'UNKNOWN (10)'],
  ],
  Standby: [
    [RM_STANDBY_ID, 0x00, 'LOCK'],
    [RM_STANDBY_ID, 0x10, 'RUNNING_XACTS'],
    [RM_STANDBY_ID, 0x20, 'INVALIDATIONS'],
    [RM_STANDBY_ID, 0x30, 'UNKNOWN (30)'],
  ],
  Heap2: [
    [RM_HEAP2_ID, 0x02, 'REWRITE'],
    [RM_HEAP2_ID, 0x12, 'PRUNE'],
    [RM_HEAP2_ID, 0x22, 'VACUUM'],
    [RM_HEAP2_ID, 0x32, 'FREEZE_PAGE'],
    [RM_HEAP2_ID, 0x42, 'VISIBLE'],
    [RM_HEAP2_ID, 0x52, 'MULTI_INSERT'],
    [RM_HEAP2_ID, 0xd2, 'MULTI_INSERT+INIT'],
    [RM_HEAP2_ID, 0x62, 'LOCK_UPDATED'],
    [RM_HEAP2_ID, 0x70, 'NEW_CID'],
    [RM_HEAP2_ID, 0x90, 'UNKNOWN (90)'],
    [RM_HEAP2_ID, 0xc0, 'UNKNOWN (c0)'],
  ],
  Heap: [
    [RM_HEAP_ID, 0x00, 'INSERT'],
    [RM_HEAP_ID, 0x82, 'INSERT+INIT'],
    [RM_HEAP_ID, 0x10, 'DELETE'],
    [RM_HEAP_ID, 0x90, 'UNKNOWN (90)'],
    [RM_HEAP_ID, 0x20, 'UPDATE'],
    [RM_HEAP_ID, 0xa2, 'UPDATE+INIT'],
    [RM_HEAP_ID, 0x30, 'TRUNCATE'],
    [RM_HEAP_ID, 0x42, 'HOT_UPDATE'],
    [RM_HEAP_ID, 0xc2, 'HOT_UPDATE+INIT'],
    [RM_HEAP_ID, 0x52, 'HEAP_CONFIRM'],
    [RM_HEAP_ID, 0x62, 'LOCK'],
    [RM_HEAP_ID, 0x72, 'INPLACE'],
    [RM_HEAP_ID, 0xf0, 'UNKNOWN (f0)'],
  ],
  Btree: [
    [RM_BTREE_ID, 0x02, 'INSERT_LEAF'],
    [RM_BTREE_ID, 0x12, 'INSERT_UPPER'],
    [RM_BTREE_ID, 0x22, 'INSERT_META'],
    [RM_BTREE_ID, 0x32, 'SPLIT_L'],
    [RM_BTREE_ID, 0x42, 'SPLIT_R'],
    [RM_BTREE_ID, 0x52, 'INSERT_POST'],
    [RM_BTREE_ID, 0x62, 'DEDUP'],
    [RM_BTREE_ID, 0x72, 'DELETE'],
    [RM_BTREE_ID, 0x82, 'UNLINK_PAGE'],
    [RM_BTREE_ID, 0x92, 'UNLINK_PAGE_META'],
    [RM_BTREE_ID, 0xa2, 'NEWROOT'],
    [RM_BTREE_ID, 0xb2, 'MARK_PAGE_HALFDEAD'],
    [RM_BTREE_ID, 0xc2, 'VACUUM'],
    [RM_BTREE_ID, 0xd0, 'REUSE_PAGE'],
    [RM_BTREE_ID, 0xe2, 'META_CLEANUP'],
    [RM_BTREE_ID, 0xf2, 'UNKNOWN (f0)'],
  ],
  Hash: [
    [RM_HASH_ID, 0x02, 'INIT_META_PAGE'],
    [RM_HASH_ID, 0x12, 'INIT_BITMAP_PAGE'],
    [RM_HASH_ID, 0x22, 'INSERT'],
    [RM_HASH_ID, 0x32, 'ADD_OVFL_PAGE'],
    [RM_HASH_ID, 0x42, 'SPLIT_ALLOCATE_PAGE'],
    [RM_HASH_ID, 0x52, 'SPLIT_PAGE'],
    [RM_HASH_ID, 0x62, 'SPLIT_COMPLETE'],
    [RM_HASH_ID, 0x72, 'MOVE_PAGE_CONTENTS'],
    [RM_HASH_ID, 0x82, 'SQUEEZE_PAGE'],
    [RM_HASH_ID, 0x92, 'DELETE'],
    [RM_HASH_ID, 0xa2, 'SPLIT_CLEANUP'],
    [RM_HASH_ID, 0xb2, 'UPDATE_META_PAGE'],
    [RM_HASH_ID, 0xc2, 'VACUUM_ONE_PAGE'],
    [RM_HASH_ID, 0xd2, 'UNKNOWN (d0)'],
  ],
  Gin: [
    [RM_GIN_ID, 0x02, 'UNKNOWN (0)'],
    [RM_GIN_ID, 0x12, 'CREATE_PTREE'],
    [RM_GIN_ID, 0x22, 'INSERT'],
    [RM_GIN_ID, 0x32, 'SPLIT'],
    [RM_GIN_ID, 0x42, 'VACUUM_PAGE'],
    [RM_GIN_ID, 0x52, 'DELETE_PAGE'],
    [RM_GIN_ID, 0x62, 'UPDATE_META_PAGE'],
    [RM_GIN_ID, 0x72, 'INSERT_LISTPAGE'],
    [RM_GIN_ID, 0x82, 'DELETE_LISTPAGE'],
    [RM_GIN_ID, 0x92, 'VACUUM_DATA_LEAF_PAGE'],
  ],
  Gist: [
    [RM_GIST_ID, 0x02, 'PAGE_UPDATE'],
    [RM_GIST_ID, 0x12, 'DELETE'],
    [RM_GIST_ID, 0x20, 'PAGE_REUSE'],
    [RM_GIST_ID, 0x32, 'PAGE_SPLIT'],
    [RM_GIST_ID, 0x42, 'UNKNOWN (40)'],
    [RM_GIST_ID, 0x52, 'UNKNOWN (50)'],
    [RM_GIST_ID, 0x62, 'PAGE_DELETE'],
    [RM_GIST_ID, 0x72, 'ASSIGN_LSN'],
  ],
  Sequence: [
    [RM_SEQ_ID, 0x02, 'LOG'],
    [RM_SEQ_ID, 0x12, 'UNKNOWN (10)'],
  ],
  SPGist: [
    [RM_SPGIST_ID, 0x02, 'UNKNOWN (0)'],
    [RM_SPGIST_ID, 0x12, 'ADD_LEAF'],
    [RM_SPGIST_ID, 0x22, 'MOVE_LEAFS'],
    [RM_SPGIST_ID, 0x32, 'ADD_NODE'],
    [RM_SPGIST_ID, 0x42, 'SPLIT_TUPLE'],
    [RM_SPGIST_ID, 0x52, 'PICKSPLIT'],
    [RM_SPGIST_ID, 0x62, 'VACUUM_LEAF'],
    [RM_SPGIST_ID, 0x72, 'VACUUM_ROOT'],
    [RM_SPGIST_ID, 0x82, 'VACUUM_REDIRECT'],
  ],
  BRIN: [
    [RM_BRIN_ID, 0x02, 'CREATE_INDEX'],
    [RM_BRIN_ID, 0x12, 'INSERT'],
    [RM_BRIN_ID, 0x92, 'INSERT+INIT'],
    [RM_BRIN_ID, 0x22, 'UPDATE'],
    [RM_BRIN_ID, 0xa2, 'UPDATE+INIT'],
    [RM_BRIN_ID, 0x32, 'SAMEPAGE_UPDATE'],
    [RM_BRIN_ID, 0xb2, 'UNKNOWN (b0)'],
    [RM_BRIN_ID, 0x42, 'REVMAP_EXTEND'],
    [RM_BRIN_ID, 0x52, 'DESUMMARIZE'],
    [RM_BRIN_ID, 0x62, 'UNKNOWN (60)'],
  ],
  CommitTs: [
    [RM_COMMIT_TS_ID, 0x00, 'ZEROPAGE'],
    [RM_COMMIT_TS_ID, 0x10, 'TRUNCATE'],
    // commit_ts_identify does not strip the XLR_* flags
    [RM_COMMIT_TS_ID, 0x01, 'UNKNOWN (0)'],
    [RM_COMMIT_TS_ID, 0x12, 'UNKNOWN (10)'],
  ],
  ReplicationOrigin: [
    [RM_REPLORIGIN_ID, 0x00, 'SET'],
    [RM_REPLORIGIN_ID, 0x10, 'DROP'],
    [RM_REPLORIGIN_ID, 0x11, 'UNKNOWN (10)'],
    [RM_REPLORIGIN_ID, 0x20, 'UNKNOWN (20)'],
  ],
  Generic: [
    [RM_GENERIC_ID, 0x00, 'Generic'],
    [RM_GENERIC_ID, 0x02, 'Generic'],
    [RM_GENERIC_ID, 0xf3, 'Generic'],
  ],
  LogicalMessage: [
    [RM_LOGICALMSG_ID, 0x00, 'MESSAGE'],
    [RM_LOGICALMSG_ID, 0x01, 'MESSAGE'],
    [RM_LOGICALMSG_ID, 0x10, 'UNKNOWN (10)'],
  ],
}

describe('recordTypeName', () => {
  it('has spot checks for every built-in rmgr', () => {
    expect(Object.keys(CASES)).toEqual(RMGR_NAMES)
  })

  for (const [rmgr, cases] of Object.entries(CASES)) {
    it.each(cases)(`${rmgr}: rmid %i, info %i is %s`, (rmid, info, expected) => {
      expect(rmgrName(rmid)).toBe(rmgr)
      expect(recordTypeName(rmid, info)).toBe(expected)
    })
  }

  it('ignores the XLR_* flag bits for the rmgrs that mask them', () => {
    const flags = [0, XLR_SPECIAL_REL_UPDATE, XLR_CHECK_CONSISTENCY, 0x0f]
    for (const f of flags) {
      expect(recordTypeName(RM_HEAP_ID, XLOG_HEAP_INSERT | XLOG_HEAP_INIT_PAGE | f)).toBe('INSERT+INIT')
      expect(recordTypeName(RM_HEAP2_ID, XLOG_HEAP2_MULTI_INSERT | f)).toBe('MULTI_INSERT')
      expect(recordTypeName(RM_XACT_ID, XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO | f)).toBe('COMMIT')
    }
  })

  it('names custom and invalid rmgrs as pg_waldump would', () => {
    expect(recordTypeName(128, 0x13)).toBe('UNKNOWN (10)')
    expect(recordTypeName(255, 0x00)).toBe('UNKNOWN (0)')
    expect(recordTypeName(22, 0x40)).toBe('UNKNOWN (40)')
  })

  it('rejects an info value that is not a byte', () => {
    expect(() => recordTypeName(RM_HEAP_ID, 256)).toThrow(RangeError)
    expect(() => recordTypeName(RM_HEAP_ID, -1)).toThrow(RangeError)
  })
})

describe('rmgrName', () => {
  it('prints custom rmgrs as custom### and flags ids Postgres rejects', () => {
    expect(rmgrName(128)).toBe('custom128')
    expect(rmgrName(255)).toBe('custom255')
    expect(rmgrName(22)).toBe('invalid rmgr 22')
    expect(rmgrName(127)).toBe('invalid rmgr 127')
    expect(rmgrName(256)).toBe('invalid rmgr 256')
    expect(rmgrName(-1)).toBe('invalid rmgr -1')
  })

  it('knows which ids are valid', () => {
    expect([0, 21, 128, 255].every(rmgrIdIsValid)).toBe(true)
    expect([22, 127, 256, 1.5].some(rmgrIdIsValid)).toBe(false)
  })
})
