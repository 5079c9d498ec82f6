/**
 * PostgreSQL 15 resource managers (xl_rmid) and the names pg_waldump gives their records.
 *
 * recordTypeName reproduces each rmgr's `*_identify` function from src/backend/access/rmgrdesc in
 * REL_15, including their quirks: most switch on `info & ~XLR_INFO_MASK`, Transaction on
 * `info & XLOG_XACT_OPMASK` (so the HAS_INFO bit is ignored), CommitTs and ReplicationOrigin on the raw
 * info byte (so any XLR_* flag makes them unknown), Generic names every record "Generic", and Heap, Heap2
 * and BRIN only give a "+INIT" name to the ops that are ever logged with their INIT_PAGE bit.
 */

export const RM_XLOG_ID = 0
export const RM_XACT_ID = 1
export const RM_SMGR_ID = 2
export const RM_CLOG_ID = 3
export const RM_DBASE_ID = 4
export const RM_TBLSPC_ID = 5
export const RM_MULTIXACT_ID = 6
export const RM_RELMAP_ID = 7
export const RM_STANDBY_ID = 8
export const RM_HEAP2_ID = 9
export const RM_HEAP_ID = 10
export const RM_BTREE_ID = 11
export const RM_HASH_ID = 12
export const RM_GIN_ID = 13
export const RM_GIST_ID = 14
export const RM_SEQ_ID = 15
export const RM_SPGIST_ID = 16
export const RM_BRIN_ID = 17
export const RM_COMMIT_TS_ID = 18
export const RM_REPLORIGIN_ID = 19
export const RM_GENERIC_ID = 20
export const RM_LOGICALMSG_ID = 21
export const RM_MAX_BUILTIN_ID = RM_LOGICALMSG_ID
/** Ids 128..255 belong to extensions (custom rmgrs, new in 15); 22..127 are invalid. */
export const RM_MIN_CUSTOM_ID = 128
export const RM_MAX_CUSTOM_ID = 255

export const RMGR_NAMES: readonly string[] = Object.freeze([
  'XLOG',
  'Transaction',
  'Storage',
  'CLOG',
  'Database',
  'Tablespace',
  'MultiXact',
  'RelMap',
  'Standby',
  'Heap2',
  'Heap',
  'Btree',
  'Hash',
  'Gin',
  'Gist',
  'Sequence',
  'SPGist',
  'BRIN',
  'CommitTs',
  'ReplicationOrigin',
  'Generic',
  'LogicalMessage',
])

// xl_info: the low nibble is the WAL machinery's, the high nibble the rmgr's.
export const XLR_INFO_MASK = 0x0f
export const XLR_RMGR_INFO_MASK = 0xf0
/** The record changes relation files in ways its block references do not describe. */
export const XLR_SPECIAL_REL_UPDATE = 0x01
/** Every block carries an image for wal_consistency_checking to compare after redo. */
export const XLR_CHECK_CONSISTENCY = 0x02

// XLOG (catalog/pg_control.h). 0xC0 is unused in 15.
export const XLOG_CHECKPOINT_SHUTDOWN = 0x00
export const XLOG_CHECKPOINT_ONLINE = 0x10
export const XLOG_NOOP = 0x20
export const XLOG_NEXTOID = 0x30
export const XLOG_SWITCH = 0x40
export const XLOG_BACKUP_END = 0x50
export const XLOG_PARAMETER_CHANGE = 0x60
export const XLOG_RESTORE_POINT = 0x70
export const XLOG_FPW_CHANGE = 0x80
export const XLOG_END_OF_RECOVERY = 0x90
export const XLOG_FPI_FOR_HINT = 0xa0
export const XLOG_FPI = 0xb0
export const XLOG_OVERWRITE_CONTRECORD = 0xd0

// Transaction (access/xact.h): the op lives in bits 4-6; bit 7 says an xinfo word follows xact_time.
export const XLOG_XACT_COMMIT = 0x00
export const XLOG_XACT_PREPARE = 0x10
export const XLOG_XACT_ABORT = 0x20
export const XLOG_XACT_COMMIT_PREPARED = 0x30
export const XLOG_XACT_ABORT_PREPARED = 0x40
export const XLOG_XACT_ASSIGNMENT = 0x50
export const XLOG_XACT_INVALIDATIONS = 0x60
export const XLOG_XACT_OPMASK = 0x70
export const XLOG_XACT_HAS_INFO = 0x80

// Storage (catalog/storage_xlog.h)
export const XLOG_SMGR_CREATE = 0x10
export const XLOG_SMGR_TRUNCATE = 0x20

// CLOG (access/clog.h)
export const CLOG_ZEROPAGE = 0x00
export const CLOG_TRUNCATE = 0x10

// Database (commands/dbcommands_xlog.h)
export const XLOG_DBASE_CREATE_FILE_COPY = 0x00
export const XLOG_DBASE_CREATE_WAL_LOG = 0x10
export const XLOG_DBASE_DROP = 0x20

// Tablespace (commands/tablespace.h)
export const XLOG_TBLSPC_CREATE = 0x00
export const XLOG_TBLSPC_DROP = 0x10

// MultiXact (access/multixact.h)
export const XLOG_MULTIXACT_ZERO_OFF_PAGE = 0x00
export const XLOG_MULTIXACT_ZERO_MEM_PAGE = 0x10
export const XLOG_MULTIXACT_CREATE_ID = 0x20
export const XLOG_MULTIXACT_TRUNCATE_ID = 0x30

// RelMap (utils/relmapper.h)
export const XLOG_RELMAP_UPDATE = 0x00

// Heap and Heap2 (access/heapam_xlog.h): the op lives in bits 4-6; bit 7 means "redo starts from an
// empty page" and is shared by both rmgrs.
export const XLOG_HEAP_INSERT = 0x00
export const XLOG_HEAP_DELETE = 0x10
export const XLOG_HEAP_UPDATE = 0x20
export const XLOG_HEAP_TRUNCATE = 0x30
export const XLOG_HEAP_HOT_UPDATE = 0x40
export const XLOG_HEAP_CONFIRM = 0x50
export const XLOG_HEAP_LOCK = 0x60
export const XLOG_HEAP_INPLACE = 0x70
export const XLOG_HEAP_OPMASK = 0x70
export const XLOG_HEAP_INIT_PAGE = 0x80

export const XLOG_HEAP2_REWRITE = 0x00
export const XLOG_HEAP2_PRUNE = 0x10
export const XLOG_HEAP2_VACUUM = 0x20
export const XLOG_HEAP2_FREEZE_PAGE = 0x30
export const XLOG_HEAP2_VISIBLE = 0x40
export const XLOG_HEAP2_MULTI_INSERT = 0x50
export const XLOG_HEAP2_LOCK_UPDATED = 0x60
export const XLOG_HEAP2_NEW_CID = 0x70

/**
 * One rmgr's identify function as data: the record is named `names[info & mask]`, or unknown when that
 * entry is missing.
 */
interface Identify {
  readonly mask: number
  readonly names: Readonly<Record<number, string>>
}

const RMGR_OP_MASK = 0xff & ~XLR_INFO_MASK

const IDENTIFY: readonly Identify[] = [
  {
    mask: RMGR_OP_MASK,
    names: {
      [XLOG_CHECKPOINT_SHUTDOWN]: 'CHECKPOINT_SHUTDOWN',
      [XLOG_CHECKPOINT_ONLINE]: 'CHECKPOINT_ONLINE',
      [XLOG_NOOP]: 'NOOP',
      [XLOG_NEXTOID]: 'NEXTOID',
      [XLOG_SWITCH]: 'SWITCH',
      [XLOG_BACKUP_END]: 'BACKUP_END',
      [XLOG_PARAMETER_CHANGE]: 'PARAMETER_CHANGE',
      [XLOG_RESTORE_POINT]: 'RESTORE_POINT',
      [XLOG_FPW_CHANGE]: 'FPW_CHANGE',
      [XLOG_END_OF_RECOVERY]: 'END_OF_RECOVERY',
      [XLOG_OVERWRITE_CONTRECORD]: 'OVERWRITE_CONTRECORD',
      [XLOG_FPI]: 'FPI',
      [XLOG_FPI_FOR_HINT]: 'FPI_FOR_HINT',
    },
  },
  {
    mask: XLOG_XACT_OPMASK,
    names: {
      [XLOG_XACT_COMMIT]: 'COMMIT',
      [XLOG_XACT_PREPARE]: 'PREPARE',
      [XLOG_XACT_ABORT]: 'ABORT',
      [XLOG_XACT_COMMIT_PREPARED]: 'COMMIT_PREPARED',
      [XLOG_XACT_ABORT_PREPARED]: 'ABORT_PREPARED',
      [XLOG_XACT_ASSIGNMENT]: 'ASSIGNMENT',
      // singular, unlike Standby's INVALIDATIONS
      [XLOG_XACT_INVALIDATIONS]: 'INVALIDATION',
    },
  },
  { mask: RMGR_OP_MASK, names: { [XLOG_SMGR_CREATE]: 'CREATE', [XLOG_SMGR_TRUNCATE]: 'TRUNCATE' } },
  { mask: RMGR_OP_MASK, names: { [CLOG_ZEROPAGE]: 'ZEROPAGE', [CLOG_TRUNCATE]: 'TRUNCATE' } },
  {
    mask: RMGR_OP_MASK,
    names: {
      [XLOG_DBASE_CREATE_FILE_COPY]: 'CREATE_FILE_COPY',
      [XLOG_DBASE_CREATE_WAL_LOG]: 'CREATE_WAL_LOG',
      [XLOG_DBASE_DROP]: 'DROP',
    },
  },
  { mask: RMGR_OP_MASK, names: { [XLOG_TBLSPC_CREATE]: 'CREATE', [XLOG_TBLSPC_DROP]: 'DROP' } },
  {
    mask: RMGR_OP_MASK,
    names: {
      [XLOG_MULTIXACT_ZERO_OFF_PAGE]: 'ZERO_OFF_PAGE',
      [XLOG_MULTIXACT_ZERO_MEM_PAGE]: 'ZERO_MEM_PAGE',
      [XLOG_MULTIXACT_CREATE_ID]: 'CREATE_ID',
      [XLOG_MULTIXACT_TRUNCATE_ID]: 'TRUNCATE_ID',
    },
  },
  { mask: RMGR_OP_MASK, names: { [XLOG_RELMAP_UPDATE]: 'UPDATE' } },
  // Standby (storage/standbydefs.h): LOCK, RUNNING_XACTS, INVALIDATIONS
  { mask: RMGR_OP_MASK, names: { 0: 'LOCK', 16: 'RUNNING_XACTS', 32: 'INVALIDATIONS' } },
  {
    mask: RMGR_OP_MASK,
    names: {
      [XLOG_HEAP2_REWRITE]: 'REWRITE',
      [XLOG_HEAP2_PRUNE]: 'PRUNE',
      [XLOG_HEAP2_VACUUM]: 'VACUUM',
      [XLOG_HEAP2_FREEZE_PAGE]: 'FREEZE_PAGE',
      [XLOG_HEAP2_VISIBLE]: 'VISIBLE',
      [XLOG_HEAP2_MULTI_INSERT]: 'MULTI_INSERT',
      [XLOG_HEAP2_MULTI_INSERT | XLOG_HEAP_INIT_PAGE]: 'MULTI_INSERT+INIT',
      [XLOG_HEAP2_LOCK_UPDATED]: 'LOCK_UPDATED',
      [XLOG_HEAP2_NEW_CID]: 'NEW_CID',
    },
  },
  {
    mask: RMGR_OP_MASK,
    names: {
      [XLOG_HEAP_INSERT]: 'INSERT',
      [XLOG_HEAP_INSERT | XLOG_HEAP_INIT_PAGE]: 'INSERT+INIT',
      [XLOG_HEAP_DELETE]: 'DELETE',
      [XLOG_HEAP_UPDATE]: 'UPDATE',
      [XLOG_HEAP_UPDATE | XLOG_HEAP_INIT_PAGE]: 'UPDATE+INIT',
      [XLOG_HEAP_HOT_UPDATE]: 'HOT_UPDATE',
      [XLOG_HEAP_HOT_UPDATE | XLOG_HEAP_INIT_PAGE]: 'HOT_UPDATE+INIT',
      [XLOG_HEAP_TRUNCATE]: 'TRUNCATE',
      // the only identify name that repeats its rmgr's name
      [XLOG_HEAP_CONFIRM]: 'HEAP_CONFIRM',
      [XLOG_HEAP_LOCK]: 'LOCK',
      [XLOG_HEAP_INPLACE]: 'INPLACE',
    },
  },
  // Btree (access/nbtxlog.h)
  {
    mask: RMGR_OP_MASK,
    names: {
      0: 'INSERT_LEAF',
      16: 'INSERT_UPPER',
      32: 'INSERT_META',
      48: 'SPLIT_L',
      64: 'SPLIT_R',
      80: 'INSERT_POST',
      96: 'DEDUP',
      112: 'DELETE',
      128: 'UNLINK_PAGE',
      144: 'UNLINK_PAGE_META',
      160: 'NEWROOT',
      176: 'MARK_PAGE_HALFDEAD',
      192: 'VACUUM',
      208: 'REUSE_PAGE',
      224: 'META_CLEANUP',
    },
  },
  // Hash (access/hash_xlog.h)
  {
    mask: RMGR_OP_MASK,
    names: {
      0: 'INIT_META_PAGE',
      16: 'INIT_BITMAP_PAGE',
      32: 'INSERT',
      48: 'ADD_OVFL_PAGE',
      64: 'SPLIT_ALLOCATE_PAGE',
      80: 'SPLIT_PAGE',
      96: 'SPLIT_COMPLETE',
      112: 'MOVE_PAGE_CONTENTS',
      128: 'SQUEEZE_PAGE',
      144: 'DELETE',
      160: 'SPLIT_CLEANUP',
      176: 'UPDATE_META_PAGE',
      192: 'VACUUM_ONE_PAGE',
    },
  },
  // Gin (access/ginxlog.h); 0x00 was CREATE_INDEX before 12
  {
    mask: RMGR_OP_MASK,
    names: {
      16: 'CREATE_PTREE',
      32: 'INSERT',
      48: 'SPLIT',
      64: 'VACUUM_PAGE',
      80: 'DELETE_PAGE',
      96: 'UPDATE_META_PAGE',
      112: 'INSERT_LISTPAGE',
      128: 'DELETE_LISTPAGE',
      144: 'VACUUM_DATA_LEAF_PAGE',
    },
  },
  // Gist (access/gistxlog.h); 0x40 and 0x50 are retired
  {
    mask: RMGR_OP_MASK,
    names: {
      0: 'PAGE_UPDATE',
      16: 'DELETE',
      32: 'PAGE_REUSE',
      48: 'PAGE_SPLIT',
      96: 'PAGE_DELETE',
      112: 'ASSIGN_LSN',
    },
  },
  // Sequence (commands/sequence.h)
  { mask: RMGR_OP_MASK, names: { 0: 'LOG' } },
  // SPGist (access/spgxlog.h); 0x00 was CREATE_INDEX before 12
  {
    mask: RMGR_OP_MASK,
    names: {
      16: 'ADD_LEAF',
      32: 'MOVE_LEAFS',
      48: 'ADD_NODE',
      64: 'SPLIT_TUPLE',
      80: 'PICKSPLIT',
      96: 'VACUUM_LEAF',
      112: 'VACUUM_ROOT',
      128: 'VACUUM_REDIRECT',
    },
  },
  // BRIN (access/brin_xlog.h): op in bits 4-6, bit 7 = INIT_PAGE
  {
    mask: RMGR_OP_MASK,
    names: {
      0: 'CREATE_INDEX',
      16: 'INSERT',
      144: 'INSERT+INIT',
      32: 'UPDATE',
      160: 'UPDATE+INIT',
      48: 'SAMEPAGE_UPDATE',
      64: 'REVMAP_EXTEND',
      80: 'DESUMMARIZE',
    },
  },
  // CommitTs (access/commit_ts.h): commit_ts_identify switches on the unmasked info byte
  { mask: 0xff, names: { 0: 'ZEROPAGE', 16: 'TRUNCATE' } },
  // ReplicationOrigin (replication/origin.h): also unmasked
  { mask: 0xff, names: { 0: 'SET', 16: 'DROP' } },
  // Generic: every record, whatever its info, is "Generic"
  { mask: 0x00, names: { 0: 'Generic' } },
  // LogicalMessage (replication/message.h)
  { mask: RMGR_OP_MASK, names: { 0: 'MESSAGE' } },
]

export function rmgrIdIsBuiltin(rmid: number): boolean {
  return Number.isInteger(rmid) && rmid >= 0 && rmid <= RM_MAX_BUILTIN_ID
}

export function rmgrIdIsCustom(rmid: number): boolean {
  return Number.isInteger(rmid) && rmid >= RM_MIN_CUSTOM_ID && rmid <= RM_MAX_CUSTOM_ID
}

/** What Postgres' xlogreader accepts in xl_rmid; anything else is "invalid resource manager ID". */
export function rmgrIdIsValid(rmid: number): boolean {
  return rmgrIdIsBuiltin(rmid) || rmgrIdIsCustom(rmid)
}

/**
 * pg_waldump's rmgr column. It cannot load extensions, so custom rmgrs are shown by number
 * ("custom128"); ids Postgres would never accept get a name that says so.
 */
export function rmgrName(rmid: number): string {
  if (rmgrIdIsBuiltin(rmid)) return RMGR_NAMES[rmid]
  if (rmgrIdIsCustom(rmid)) return `custom${rmid}`
  return `invalid rmgr ${rmid}`
}

/**
 * The record type exactly as pg_waldump prints it after `desc: `: the rmgr's identify result, or
 * `UNKNOWN (%x)` of the info byte without its XLR_* flags when there is none (always the case for
 * custom rmgrs, whose identify functions pg_waldump does not have).
 */
export function recordTypeName(rmid: number, info: number): string {
  if (!Number.isInteger(info) || info < 0 || info > 0xff) {
    throw new RangeError(`xl_info ${info} is not a byte`)
  }
  const identify = rmgrIdIsBuiltin(rmid) ? IDENTIFY[rmid] : undefined
  const name = identify?.names[info & identify.mask]
  return name ?? `UNKNOWN (${(info & RMGR_OP_MASK).toString(16)})`
}

/**
 * Every record type a built-in rmgr names: the bits of xl_info its identify function looks at (`op`) and
 * pg_waldump's name for it, in op order.
 */
export function recordTypes(rmid: number): { op: number; name: string }[] {
  const identify = rmgrIdIsBuiltin(rmid) ? IDENTIFY[rmid] : undefined
  if (!identify) throw new RangeError(`rmgr ${rmid} is not a built-in resource manager`)
  return Object.entries(identify.names)
    .map(([op, name]) => ({ op: Number(op), name }))
    .sort((a, b) => a.op - b.op)
}
