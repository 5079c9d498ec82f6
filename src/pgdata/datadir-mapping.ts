/**
 * How a Postgres datadir maps onto engine keys (Neon's key layout), and the encodings of the directory
 * values. Everything a compute needs — relation blocks and sizes, the database and relation directories,
 * SLRU segments (pg_xact, pg_multixact, pg_commit_ts), two-phase state files, relmapper files, pg_control
 * and the checkpoint, the progress of replication origins, the tablespaces — is a key, so it is versioned
 * by LSN and inherited by branches like any page.
 *
 *   field1  kind: 0x00 relations, 0x01 SLRUs, 0x02 two-phase, 0x03 control file and checkpoint,
 *           0x04 replication origins, 0x05 tablespaces
 *   field2  tablespace OID, or SLRU kind
 *   field3  database OID, or 1 for SLRU segment keys
 *   field4  relfilenode, or SLRU segment number
 *   field5  fork number
 *   field6  block number; 0xFFFFFFFF = the size entry of the fork or segment
 *
 * Because keys sort as bytes, a relation fork's blocks are followed by its size entry, a database's keys
 * form one contiguous range (dropping it is one range), and the relmap file and relation directory of a
 * database (relfilenode 0) come before its relations.
 */

import { encodeKey, KEY_SIZE, type KeyFields, type KeyRange } from '../engine/key.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { SLRU_PAGES_PER_SEGMENT } from '../postgres/slru.js'

export const REL_KEY_KIND = 0x00
export const SLRU_KEY_KIND = 0x01
export const TWOPHASE_KEY_KIND = 0x02
export const CONTROL_KEY_KIND = 0x03
export const REPLORIGIN_KEY_KIND = 0x04
export const TBLSPC_KEY_KIND = 0x05

/** field6 of size entries. */
export const SIZE_BLKNUM = 0xffffffff

/** field2 of SLRU keys. 0..2 are Neon's numbers; pg_commit_ts, which Neon does not keep, is 3. */
export enum SlruKind {
  Clog = 0,
  MultiXactMembers = 1,
  MultiXactOffsets = 2,
  CommitTs = 3,
}

export const SLRU_DIRS: Record<SlruKind, string> = {
  [SlruKind.Clog]: 'pg_xact',
  [SlruKind.MultiXactMembers]: 'pg_multixact/members',
  [SlruKind.MultiXactOffsets]: 'pg_multixact/offsets',
  [SlruKind.CommitTs]: 'pg_commit_ts',
}

/** Every SLRU kind, in key order. */
export const SLRU_KINDS: readonly SlruKind[] = [
  SlruKind.Clog,
  SlruKind.MultiXactMembers,
  SlruKind.MultiXactOffsets,
  SlruKind.CommitTs,
]

export interface RelTag {
  spcNode: number
  dbNode: number
  relNode: number
  forkNum: number
}

const key = (
  field1: number,
  field2: number,
  field3: number,
  field4: number,
  field5: number,
  field6: number,
) => encodeKey({ field1, field2, field3, field4, field5, field6 })

/** The map of databases (tablespace, database) that exist. */
export const DBDIR_KEY = key(REL_KEY_KIND, 0, 0, 0, 0, 0)
export const TWOPHASE_DIR_KEY = key(TWOPHASE_KEY_KIND, 0, 0, 0, 0, 0)
export const CONTROLFILE_KEY = key(CONTROL_KEY_KIND, 0, 0, 0, 0, 0)
export const CHECKPOINT_KEY = key(CONTROL_KEY_KIND, 0, 0, 0, 0, 1)
/** The replication origins with a progress (their RepOriginIds, 1..65534). */
export const REPLORIGIN_DIR_KEY = key(REPLORIGIN_KEY_KIND, 0, 0, 0, 0, 0)
/** The tablespaces other than pg_default and pg_global (their OIDs), whether or not they hold anything. */
export const TBLSPC_DIR_KEY = key(TBLSPC_KEY_KIND, 0, 0, 0, 0, 0)

export function relBlockKey(rel: RelTag, blkno: number): Buffer {
  if (rel.relNode === 0)
    throw new RangeError('relfilenode 0 is reserved for the relmap and relation directory')
  if (blkno >= SIZE_BLKNUM) throw new RangeError(`block number ${blkno} is out of range`)
  return key(REL_KEY_KIND, rel.spcNode, rel.dbNode, rel.relNode, rel.forkNum, blkno)
}

export function relSizeKey(rel: RelTag): Buffer {
  if (rel.relNode === 0)
    throw new RangeError('relfilenode 0 is reserved for the relmap and relation directory')
  return key(REL_KEY_KIND, rel.spcNode, rel.dbNode, rel.relNode, rel.forkNum, SIZE_BLKNUM)
}

/** pg_filenode.map of a database (or the shared one: tablespace 1664, database 0). */
export function relmapKey(spcNode: number, dbNode: number): Buffer {
  return key(REL_KEY_KIND, spcNode, dbNode, 0, 0, 0)
}

/** The set of (relfilenode, fork) of a database. */
export function relDirKey(spcNode: number, dbNode: number): Buffer {
  return key(REL_KEY_KIND, spcNode, dbNode, 0, 0, 1)
}

/** Every key of one database, relations and directory included. */
export function databaseRange(spcNode: number, dbNode: number): KeyRange {
  return {
    start: key(REL_KEY_KIND, spcNode, dbNode, 0, 0, 0),
    end: key(REL_KEY_KIND, spcNode, dbNode, 0xffffffff, 0xff, 0xffffffff),
  }
}

/** Every block and the size entry of one relation fork. */
export function relForkRange(rel: RelTag): KeyRange {
  return {
    start: key(REL_KEY_KIND, rel.spcNode, rel.dbNode, rel.relNode, rel.forkNum, 0),
    end: key(REL_KEY_KIND, rel.spcNode, rel.dbNode, rel.relNode, rel.forkNum + 1, 0),
  }
}

export function slruDirKey(kind: SlruKind): Buffer {
  return key(SLRU_KEY_KIND, kind, 0, 0, 0, 0)
}

export function slruBlockKey(kind: SlruKind, segno: number, blkno: number): Buffer {
  if (blkno >= SLRU_PAGES_PER_SEGMENT)
    throw new RangeError(`SLRU block ${blkno} is beyond a segment's 32 pages`)
  return key(SLRU_KEY_KIND, kind, 1, segno, 0, blkno)
}

export function slruSegSizeKey(kind: SlruKind, segno: number): Buffer {
  return key(SLRU_KEY_KIND, kind, 1, segno, 0, SIZE_BLKNUM)
}

export function twoPhaseFileKey(xid: number): Buffer {
  return key(TWOPHASE_KEY_KIND, 0, 0, 0, 0, xid)
}

/** The remote LSN a replication origin has applied up to. */
export function replOriginKey(roident: number): Buffer {
  if (roident === 0) throw new RangeError('RepOriginId 0 is InvalidRepOriginId')
  return key(REPLORIGIN_KEY_KIND, 0, 0, 0, 0, roident)
}

export type DatadirKey =
  | { kind: 'dbdir' }
  | { kind: 'relmap'; spcNode: number; dbNode: number }
  | { kind: 'reldir'; spcNode: number; dbNode: number }
  | { kind: 'rel-block'; rel: RelTag; blkno: number }
  | { kind: 'rel-size'; rel: RelTag }
  | { kind: 'slru-dir'; slru: SlruKind }
  | { kind: 'slru-block'; slru: SlruKind; segno: number; blkno: number }
  | { kind: 'slru-size'; slru: SlruKind; segno: number }
  | { kind: 'twophase-dir' }
  | { kind: 'twophase-file'; xid: number }
  | { kind: 'controlfile' }
  | { kind: 'checkpoint' }
  | { kind: 'replorigin-dir' }
  | { kind: 'replorigin'; roident: number }
  | { kind: 'tblspc-dir' }

export class DatadirKeyError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'DatadirKeyError'
}

/** What a key stands for; throws for keys outside the layout (they would be a bug or corruption). */
export function classifyKey(k: Buffer): DatadirKey {
  if (k.length !== KEY_SIZE) throw new DatadirKeyError(`a key is ${KEY_SIZE} bytes, got ${k.length}`)
  const f: KeyFields = {
    field1: k[0],
    field2: k.readUInt32BE(1),
    field3: k.readUInt32BE(5),
    field4: k.readUInt32BE(9),
    field5: k[13],
    field6: k.readUInt32BE(14),
  }
  const bad = () =>
    new DatadirKeyError(`key ${k.toString('hex').toUpperCase()} is not part of the datadir layout`)
  switch (f.field1) {
    case REL_KEY_KIND: {
      if (f.field2 === 0 && f.field3 === 0 && f.field4 === 0 && f.field5 === 0 && f.field6 === 0) {
        return { kind: 'dbdir' }
      }
      if (f.field4 === 0) {
        if (f.field5 !== 0) throw bad()
        if (f.field6 === 0) return { kind: 'relmap', spcNode: f.field2, dbNode: f.field3 }
        if (f.field6 === 1) return { kind: 'reldir', spcNode: f.field2, dbNode: f.field3 }
        throw bad()
      }
      const rel = { spcNode: f.field2, dbNode: f.field3, relNode: f.field4, forkNum: f.field5 }
      if (f.field6 === SIZE_BLKNUM) return { kind: 'rel-size', rel }
      return { kind: 'rel-block', rel, blkno: f.field6 }
    }
    case SLRU_KEY_KIND: {
      if (!(f.field2 in SLRU_DIRS)) throw bad()
      const slru = f.field2 as SlruKind
      if (f.field3 === 0 && f.field4 === 0 && f.field5 === 0 && f.field6 === 0)
        return { kind: 'slru-dir', slru }
      if (f.field3 !== 1 || f.field5 !== 0) throw bad()
      if (f.field6 === SIZE_BLKNUM) return { kind: 'slru-size', slru, segno: f.field4 }
      if (f.field6 >= SLRU_PAGES_PER_SEGMENT) throw bad()
      return { kind: 'slru-block', slru, segno: f.field4, blkno: f.field6 }
    }
    case TWOPHASE_KEY_KIND:
      if (f.field2 !== 0 || f.field3 !== 0 || f.field4 !== 0 || f.field5 !== 0) throw bad()
      return f.field6 === 0 ? { kind: 'twophase-dir' } : { kind: 'twophase-file', xid: f.field6 }
    case CONTROL_KEY_KIND:
      if (f.field2 !== 0 || f.field3 !== 0 || f.field4 !== 0 || f.field5 !== 0) throw bad()
      if (f.field6 === 0) return { kind: 'controlfile' }
      if (f.field6 === 1) return { kind: 'checkpoint' }
      throw bad()
    case REPLORIGIN_KEY_KIND:
      if (f.field2 !== 0 || f.field3 !== 0 || f.field4 !== 0 || f.field5 !== 0 || f.field6 > 0xffff)
        throw bad()
      return f.field6 === 0 ? { kind: 'replorigin-dir' } : { kind: 'replorigin', roident: f.field6 }
    case TBLSPC_KEY_KIND:
      if (f.field2 !== 0 || f.field3 !== 0 || f.field4 !== 0 || f.field5 !== 0 || f.field6 !== 0) throw bad()
      return { kind: 'tblspc-dir' }
    default:
      throw bad()
  }
}

// --- directory values ----------------------------------------------------------------------------------

/**
 * Directory values are sorted lists of fixed-width big-endian entries after a one-byte format version and
 * a u32 count, so that equal directories encode to equal bytes.
 */
const DIR_FORMAT = 1

export class DirectoryFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'DirectoryFormatError'
}

function encodeEntries<T>(
  entries: readonly T[],
  width: number,
  put: (buf: Buffer, off: number, e: T) => void,
): Buffer {
  const out = Buffer.alloc(5 + entries.length * width)
  out[0] = DIR_FORMAT
  out.writeUInt32BE(entries.length, 1)
  for (let i = 0; i < entries.length; i++) put(out, 5 + i * width, entries[i])
  return out
}

function decodeEntries<T>(
  buf: Buffer,
  width: number,
  what: string,
  get: (buf: Buffer, off: number) => T,
): T[] {
  if (buf.length < 5 || buf[0] !== DIR_FORMAT) throw new DirectoryFormatError(`${what}: unknown format`)
  const n = buf.readUInt32BE(1)
  if (buf.length !== 5 + n * width) {
    throw new DirectoryFormatError(
      `${what}: ${n} entries need ${5 + n * width} bytes, the value has ${buf.length}`,
    )
  }
  const out: T[] = []
  for (let i = 0; i < n; i++) out.push(get(buf, 5 + i * width))
  return out
}

export interface DbDirEntry {
  spcNode: number
  dbNode: number
  /** Whether the database has its own relmap file (and PG_VERSION): false for a directory only implied. */
  hasRelmap: boolean
}

export function encodeDbDir(entries: readonly DbDirEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => a.spcNode - b.spcNode || a.dbNode - b.dbNode)
  return encodeEntries(sorted, 9, (b, o, e) => {
    b.writeUInt32BE(e.spcNode, o)
    b.writeUInt32BE(e.dbNode, o + 4)
    b[o + 8] = e.hasRelmap ? 1 : 0
  })
}

export function decodeDbDir(buf: Buffer): DbDirEntry[] {
  return decodeEntries(buf, 9, 'database directory', (b, o) => ({
    spcNode: b.readUInt32BE(o),
    dbNode: b.readUInt32BE(o + 4),
    hasRelmap: b[o + 8] === 1,
  }))
}

export interface RelDirEntry {
  relNode: number
  forkNum: number
}

export function encodeRelDir(entries: readonly RelDirEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => a.relNode - b.relNode || a.forkNum - b.forkNum)
  return encodeEntries(sorted, 5, (b, o, e) => {
    b.writeUInt32BE(e.relNode, o)
    b[o + 4] = e.forkNum
  })
}

export function decodeRelDir(buf: Buffer): RelDirEntry[] {
  return decodeEntries(buf, 5, 'relation directory', (b, o) => ({
    relNode: b.readUInt32BE(o),
    forkNum: b[o + 4],
  }))
}

/** SLRU segment numbers, two-phase xids, replication origin ids or tablespace OIDs: sorted u32 lists. */
export function encodeU32Set(values: Iterable<number>): Buffer {
  const sorted = [...new Set(values)].sort((a, b) => a - b)
  return encodeEntries(sorted, 4, (b, o, v) => b.writeUInt32BE(v, o))
}

export function decodeU32Set(buf: Buffer, what: string): number[] {
  return decodeEntries(buf, 4, what, (b, o) => b.readUInt32BE(o))
}

/** A size entry: the number of blocks, u32 little-endian (as Neon stores it). */
export function encodeSize(nblocks: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(nblocks, 0)
  return b
}

export function decodeSize(buf: Buffer): number {
  if (buf.length !== 4) throw new DirectoryFormatError(`a size entry is 4 bytes, got ${buf.length}`)
  return buf.readUInt32LE(0)
}
