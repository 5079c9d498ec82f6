/**
 * Transaction (RM_XACT_ID) records: commit/abort (plain and two-phase), PREPARE, ASSIGNMENT and
 * INVALIDATIONS, decoded as PG15's ParseCommitRecord / ParseAbortRecord / ParsePrepareRecord do.
 */
import type { Lsn } from '../lsn.js'
import type { RelFileNode } from '../relfile.js'
import {
  XLOG_XACT_ABORT,
  XLOG_XACT_ABORT_PREPARED,
  XLOG_XACT_ASSIGNMENT,
  XLOG_XACT_COMMIT,
  XLOG_XACT_COMMIT_PREPARED,
  XLOG_XACT_HAS_INFO,
  XLOG_XACT_INVALIDATIONS,
  XLOG_XACT_OPMASK,
  XLOG_XACT_PREPARE,
} from '../rmgr.js'
import { MainDataReader, SIZEOF_REL_FILE_NODE, unknownOpError } from './main-data.js'

export const XACT_XINFO_HAS_DBINFO = 0x01
export const XACT_XINFO_HAS_SUBXACTS = 0x02
export const XACT_XINFO_HAS_RELFILENODES = 0x04
export const XACT_XINFO_HAS_INVALS = 0x08
export const XACT_XINFO_HAS_TWOPHASE = 0x10
export const XACT_XINFO_HAS_ORIGIN = 0x20
export const XACT_XINFO_HAS_AE_LOCKS = 0x40
export const XACT_XINFO_HAS_GID = 0x80
export const XACT_XINFO_HAS_DROPPED_STATS = 0x100

/** Magic of the 2PC state data (xl_xact_prepare.magic) that PREPARE records carry. */
export const TWOPHASE_MAGIC = 0x57f94534

const SIZEOF_STATS_ITEM = 12
const SIZEOF_INVAL_MESSAGE = 16
const MAXALIGN = 8

/** PG15 xl_xact_stats_item: a pgstats entry to drop when the transaction's outcome is known. */
export interface DroppedStat {
  kind: number
  dbOid: number
  objOid: number
}

export type XactCompletionKind = 'commit' | 'abort' | 'commit_prepared' | 'abort_prepared'

export interface XactCompletion {
  kind: XactCompletionKind
  /** The transaction whose status changes: xl_xid, or for *_prepared the prepared transaction's xid. */
  xid: number
  /** TimestampTz: microseconds since 2000-01-01 00:00:00 UTC. */
  xactTime: number
  /** Raw xinfo word (0 without XLOG_XACT_HAS_INFO); its high bits carry XACT_COMPLETION_* hints. */
  xinfo: number
  dbId?: number
  tsId?: number
  subxacts: number[]
  /** Relations whose files are unlinked by this commit/abort (all forks, all segments). */
  relfilenodes: RelFileNode[]
  droppedStats: DroppedStat[]
  /** Shared-invalidation messages carried (commit only); only a running server acts on them. */
  invalidationCount: number
  gid?: string
  originLsn?: Lsn
  originTimestamp?: number
}

export interface XactPrepare {
  kind: 'prepare'
  xid: number
  database: number
  /** TimestampTz of PREPARE TRANSACTION. */
  preparedAt: number
  owner: number
  gid: string
  subxacts: number[]
  commitRels: RelFileNode[]
  abortRels: RelFileNode[]
  commitStats: DroppedStat[]
  abortStats: DroppedStat[]
  invalidationCount: number
  initFileInval: boolean
  originLsn: Lsn
  originTimestamp: number
  /**
   * The main data itself (a view, not a copy): pg_twophase/<xid as %08X> holds exactly these bytes followed
   * by their CRC-32C.
   */
  stateData: Buffer
}

export interface XactAssignment {
  kind: 'assignment'
  xtop: number
  subxacts: number[]
}

export interface XactInvalidations {
  kind: 'invalidations'
  invalidationCount: number
}

export type XactRecord = XactCompletion | XactPrepare | XactAssignment | XactInvalidations

const COMPLETION_KINDS: Record<number, XactCompletionKind> = {
  [XLOG_XACT_COMMIT]: 'commit',
  [XLOG_XACT_ABORT]: 'abort',
  [XLOG_XACT_COMMIT_PREPARED]: 'commit_prepared',
  [XLOG_XACT_ABORT_PREPARED]: 'abort_prepared',
}

/** `info` is the full xl_info byte; `xlXid` the record header's xl_xid. */
export function parseXactRecord(info: number, data: Buffer, xlXid: number): XactRecord {
  const op = info & XLOG_XACT_OPMASK
  const completion = COMPLETION_KINDS[op]
  if (completion !== undefined) return parseCompletion(completion, info, data, xlXid)
  switch (op) {
    case XLOG_XACT_PREPARE:
      return parsePrepare(data)
    case XLOG_XACT_ASSIGNMENT: {
      const r = new MainDataReader('XACT ASSIGNMENT', data)
      const xtop = r.u32('xtop')
      const n = r.count(r.i32('nsubxacts'), 4, 'subxact xids')
      return { kind: 'assignment', xtop, subxacts: r.u32Array(n, 'subxact xids') }
    }
    case XLOG_XACT_INVALIDATIONS: {
      const r = new MainDataReader('XACT INVALIDATIONS', data)
      const n = r.count(r.i32('nmsgs'), SIZEOF_INVAL_MESSAGE, 'invalidation messages')
      return { kind: 'invalidations', invalidationCount: n }
    }
    default:
      throw unknownOpError('XACT', info)
  }
}

function parseCompletion(
  kind: XactCompletionKind,
  info: number,
  data: Buffer,
  xlXid: number,
): XactCompletion {
  const r = new MainDataReader(`XACT ${kind.toUpperCase()}`, data)
  const isCommit = kind === 'commit' || kind === 'commit_prepared'
  const isPrepared = kind === 'commit_prepared' || kind === 'abort_prepared'
  const out: XactCompletion = {
    kind,
    xid: xlXid,
    xactTime: r.i64('xact_time'),
    xinfo: 0,
    subxacts: [],
    relfilenodes: [],
    droppedStats: [],
    invalidationCount: 0,
  }
  if (info & XLOG_XACT_HAS_INFO) out.xinfo = r.u32('xinfo')
  const xinfo = out.xinfo
  if (xinfo & XACT_XINFO_HAS_DBINFO) {
    out.dbId = r.u32('dbId')
    out.tsId = r.u32('tsId')
  }
  if (xinfo & XACT_XINFO_HAS_SUBXACTS) {
    const n = r.count(r.i32('nsubxacts'), 4, 'subxact xids')
    out.subxacts = r.u32Array(n, 'subxact xids')
  }
  if (xinfo & XACT_XINFO_HAS_RELFILENODES) {
    const n = r.count(r.i32('nrels'), SIZEOF_REL_FILE_NODE, 'relfilenodes')
    for (let i = 0; i < n; i++) out.relfilenodes.push(r.relFileNode('relfilenode'))
  }
  if (xinfo & XACT_XINFO_HAS_DROPPED_STATS) {
    out.droppedStats = readStats(r, r.i32('dropped stats nitems'))
  }
  // Abort records never carry invalidations; PG's ParseAbortRecord ignores the bit, and so do we.
  if (isCommit && xinfo & XACT_XINFO_HAS_INVALS) {
    const n = r.count(r.i32('nmsgs'), SIZEOF_INVAL_MESSAGE, 'invalidation messages')
    r.skip(n * SIZEOF_INVAL_MESSAGE, 'invalidation messages')
    out.invalidationCount = n
  }
  if (xinfo & XACT_XINFO_HAS_TWOPHASE) {
    const twophaseXid = r.u32('twophase xid')
    if (isPrepared) out.xid = twophaseXid
    // The GID is written only inside the two-phase section, so a GID bit without it means nothing.
    if (xinfo & XACT_XINFO_HAS_GID) out.gid = r.cstring('gid')
  } else if (isPrepared) {
    r.fail('xinfo lacks XACT_XINFO_HAS_TWOPHASE, so the prepared transaction is unknown')
  }
  if (xinfo & XACT_XINFO_HAS_ORIGIN) {
    out.originLsn = r.lsn('origin_lsn')
    out.originTimestamp = r.i64('origin_timestamp')
  }
  return out
}

function readStats(r: MainDataReader, count: number): DroppedStat[] {
  const n = r.count(count, SIZEOF_STATS_ITEM, 'dropped stats items')
  const out: DroppedStat[] = []
  for (let i = 0; i < n; i++) {
    out.push({ kind: r.i32('stats kind'), dbOid: r.u32('stats dboid'), objOid: r.u32('stats objoid') })
  }
  return out
}

function parsePrepare(data: Buffer): XactPrepare {
  const r = new MainDataReader('XACT PREPARE', data)
  const magic = r.u32('magic')
  if (magic !== TWOPHASE_MAGIC) {
    r.fail(`magic 0x${magic.toString(16)} is not the two-phase state magic 0x${TWOPHASE_MAGIC.toString(16)}`)
  }
  const totalLen = r.u32('total_len')
  // total_len counts the CRC that is appended only when the state file is written.
  if (totalLen !== data.length + 4) {
    r.fail(`total_len ${totalLen} does not match ${data.length} bytes of state data plus the 4-byte CRC`)
  }
  const xid = r.u32('xid')
  const database = r.u32('database')
  const preparedAt = r.i64('prepared_at')
  const owner = r.u32('owner')
  const nsubxacts = r.i32('nsubxacts')
  const ncommitrels = r.i32('ncommitrels')
  const nabortrels = r.i32('nabortrels')
  const ncommitstats = r.i32('ncommitstats')
  const nabortstats = r.i32('nabortstats')
  const ninvalmsgs = r.i32('ninvalmsgs')
  const initFileInval = r.bool('initfileinval')
  r.skip(1, 'padding')
  const gidlen = r.u16('gidlen')
  const originLsn = r.lsn('origin_lsn')
  const originTimestamp = r.i64('origin_timestamp')
  return {
    kind: 'prepare',
    xid,
    database,
    preparedAt,
    owner,
    gid: padded(r, () => {
      const bytes = r.bytes(gidlen, 'gid')
      const nul = bytes.indexOf(0)
      if (nul < 0) r.fail(`gid of gidlen ${gidlen} has no terminating NUL`)
      return bytes.toString('utf8', 0, nul)
    }),
    subxacts: padded(r, () => r.u32Array(r.count(nsubxacts, 4, 'subxact xids'), 'subxact xids')),
    commitRels: padded(r, () => readRels(r, ncommitrels, 'commit relfilenodes')),
    abortRels: padded(r, () => readRels(r, nabortrels, 'abort relfilenodes')),
    commitStats: padded(r, () => readStats(r, ncommitstats)),
    abortStats: padded(r, () => readStats(r, nabortstats)),
    invalidationCount: r.count(ninvalmsgs, SIZEOF_INVAL_MESSAGE, 'invalidation messages'),
    initFileInval,
    originLsn,
    originTimestamp,
    stateData: data,
  }
}

/** Each section of the 2PC state data (header, GID, every array) is padded to a MAXALIGN boundary. */
function padded<T>(r: MainDataReader, read: () => T): T {
  const start = r.offset
  const value = read()
  const used = r.offset - start
  r.skip((MAXALIGN - (used % MAXALIGN)) % MAXALIGN, 'section padding')
  return value
}

function readRels(r: MainDataReader, count: number, what: string): RelFileNode[] {
  const n = r.count(count, SIZEOF_REL_FILE_NODE, what)
  const out: RelFileNode[] = []
  for (let i = 0; i < n; i++) out.push(r.relFileNode(what))
  return out
}

/**
 * The main data of a commit with nothing to say beyond its time (no XLOG_XACT_HAS_INFO): what a
 * transaction that only wrote tuples logs at wal_level replica. `xactTime` is a TimestampTz.
 */
export function encodePlainCommit(xactTime: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64LE(xactTime)
  return b
}
