/**
 * XLogRecord: the fixed 24-byte header, the block reference headers that follow it, and the payloads.
 *
 * Layout of a record (nothing after the fixed header is aligned):
 *   XLogRecord (24) | block headers 0..32 | [origin 253] | [toplevel xid 252] | [main data hdr 255/254]
 *   | per block in order: image bytes, block data | main data
 * The CRC-32C covers the body [24, xl_tot_len) first and then header bytes [0, 20).
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { crc32c } from './crc32c.js'
import { BLCKSZ } from './data-page.js'
import { formatLsn, type Lsn, MAX_LSN, readLsnUnchecked, writeLsn } from './lsn.js'
import { rmgrIdIsValid } from './rmgr.js'

export const SIZE_OF_XLOG_RECORD = 24

const OFF = {
  xl_tot_len: 0,
  xl_xid: 4,
  xl_prev: 8,
  xl_info: 16,
  xl_rmid: 17,
  xl_crc: 20,
} as const
/** Where XLogRecord's fields lie, for writers that patch encoded records. */
export const RECORD_HEADER_OFFSETS = OFF

export const XLR_MAX_BLOCK_ID = 32
export const XLR_BLOCK_ID_DATA_SHORT = 255
export const XLR_BLOCK_ID_DATA_LONG = 254
export const XLR_BLOCK_ID_ORIGIN = 253
export const XLR_BLOCK_ID_TOPLEVEL_XID = 252

export const BKPBLOCK_FORK_MASK = 0x0f
export const BKPBLOCK_HAS_IMAGE = 0x10
export const BKPBLOCK_HAS_DATA = 0x20
export const BKPBLOCK_WILL_INIT = 0x40
export const BKPBLOCK_SAME_REL = 0x80

export const BKPIMAGE_HAS_HOLE = 0x01
export const BKPIMAGE_APPLY = 0x02
export const BKPIMAGE_COMPRESS_PGLZ = 0x04
export const BKPIMAGE_COMPRESS_LZ4 = 0x08
export const BKPIMAGE_COMPRESS_ZSTD = 0x10
const BKPIMAGE_COMPRESSED = BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_COMPRESS_LZ4 | BKPIMAGE_COMPRESS_ZSTD

export const MAIN_FORKNUM = 0
export const FSM_FORKNUM = 1
export const VISIBILITYMAP_FORKNUM = 2
export const INIT_FORKNUM = 3
export const FORK_NAMES = ['main', 'fsm', 'vm', 'init'] as const

export type ImageCompression = 'none' | 'pglz' | 'lz4' | 'zstd'

export interface BlockImage {
  /** The stored bytes: the page without its hole, possibly compressed. */
  data: Buffer
  holeOffset: number
  holeLength: number
  bimgInfo: number
  /** True for a real full-page write; false for an image kept only for wal_consistency_checking. */
  apply: boolean
  compression: ImageCompression
}

export interface BlockRef {
  id: number
  forkNum: number
  flags: number
  spcNode: number
  dbNode: number
  relNode: number
  blkno: number
  willInit: boolean
  image: BlockImage | null
  data: Buffer | null
}

export interface XLogRecordHeader {
  totLen: number
  xid: number
  prev: Lsn
  info: number
  rmid: number
  crc: number
}

export interface DecodedRecord extends XLogRecordHeader {
  lsn: Lsn
  /** Where Postgres stamps pages changed by this record: start + MAXALIGN(tot_len) in WAL byte space. */
  endLsn: Lsn
  blocks: BlockRef[]
  mainData: Buffer
  /** Replication origin id, 0 when absent (InvalidRepOriginId). */
  origin: number
  /** Top-level xid of a subtransaction's first record (wal_level=logical), 0 when absent. */
  toplevelXid: number
  /** Bytes of block images stored in the record (pg_waldump's "FPI size"). */
  fpiLen: number
  raw: Buffer
}

export class WalRecordError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'WalRecordError'
  constructor(
    readonly lsn: Lsn,
    message: string,
  ) {
    super(message)
  }
}

export function readRecordHeader(buf: Buffer, offset = 0): XLogRecordHeader {
  return {
    totLen: buf.readUInt32LE(offset + OFF.xl_tot_len),
    xid: buf.readUInt32LE(offset + OFF.xl_xid),
    prev: readLsnUnchecked(buf, offset + OFF.xl_prev),
    info: buf[offset + OFF.xl_info],
    rmid: buf[offset + OFF.xl_rmid],
    crc: buf.readUInt32LE(offset + OFF.xl_crc),
  }
}

const EMPTY = Buffer.alloc(0)

function compressionOf(bimgInfo: number): ImageCompression {
  if (bimgInfo & BKPIMAGE_COMPRESS_PGLZ) return 'pglz'
  if (bimgInfo & BKPIMAGE_COMPRESS_LZ4) return 'lz4'
  if (bimgInfo & BKPIMAGE_COMPRESS_ZSTD) return 'zstd'
  return 'none'
}

/**
 * Validates a record header as Postgres' ValidXLogRecordHeader does; `expectedPrev` undefined skips the
 * prev-link check (the first record read from an arbitrary position). Returns the reason or null.
 */
export function checkRecordHeader(
  h: XLogRecordHeader,
  lsn: Lsn,
  expectedPrev: Lsn | undefined,
): string | null {
  if (h.totLen < SIZE_OF_XLOG_RECORD) {
    return `invalid record length at ${formatLsn(lsn)}: wanted ${SIZE_OF_XLOG_RECORD}, got ${h.totLen}`
  }
  if (!rmgrIdIsValid(h.rmid)) return `invalid resource manager ID ${h.rmid} at ${formatLsn(lsn)}`
  if (expectedPrev !== undefined && h.prev !== expectedPrev) {
    return `record with incorrect prev-link ${formatLsn(h.prev)} at ${formatLsn(lsn)}`
  }
  return null
}

export function recordCrc(raw: Buffer): number {
  return crc32c(raw.subarray(0, OFF.xl_crc), crc32c(raw.subarray(SIZE_OF_XLOG_RECORD)))
}

/**
 * Decodes a complete record (`raw` holds exactly xl_tot_len bytes), verifying its CRC and every
 * cross-check Postgres' DecodeXLogRecord makes. Payloads are views into `raw`.
 */
export function decodeRecord(raw: Buffer, lsn: Lsn, endLsn: Lsn): DecodedRecord {
  const h = readRecordHeader(raw)
  if (h.totLen !== raw.length) {
    throw new WalRecordError(lsn, `record with invalid length at ${formatLsn(lsn)}`)
  }
  if (recordCrc(raw) !== h.crc) {
    throw new WalRecordError(lsn, `incorrect resource manager data checksum in record at ${formatLsn(lsn)}`)
  }
  if (h.prev > MAX_LSN)
    throw new WalRecordError(lsn, `record at ${formatLsn(lsn)} has a prev-link above 2^53`)
  const fail = (msg: string): never => {
    throw new WalRecordError(lsn, `${msg} at ${formatLsn(lsn)}`)
  }
  const shortData = () => fail('record with invalid length')

  const blocks: BlockRef[] = []
  const imageLens: number[] = []
  const dataLens: number[] = []
  let pos = SIZE_OF_XLOG_RECORD
  const end = raw.length
  let datatotal = 0
  let mainLen = 0
  let origin = 0
  let toplevelXid = 0
  let lastRel: BlockRef | null = null
  let fpiLen = 0

  while (end - pos > datatotal) {
    const blockId = raw[pos++]
    if (blockId === XLR_BLOCK_ID_DATA_SHORT) {
      if (end - pos < 1) shortData()
      mainLen = raw[pos++]
      datatotal += mainLen
      break
    }
    if (blockId === XLR_BLOCK_ID_DATA_LONG) {
      if (end - pos < 4) shortData()
      mainLen = raw.readUInt32LE(pos)
      pos += 4
      datatotal += mainLen
      break
    }
    if (blockId === XLR_BLOCK_ID_ORIGIN) {
      if (end - pos < 2) shortData()
      origin = raw.readUInt16LE(pos)
      pos += 2
      continue
    }
    if (blockId === XLR_BLOCK_ID_TOPLEVEL_XID) {
      if (end - pos < 4) shortData()
      toplevelXid = raw.readUInt32LE(pos)
      pos += 4
      continue
    }
    if (blockId > XLR_MAX_BLOCK_ID) fail(`invalid block_id ${blockId}`)
    if (blocks.length > 0 && blockId <= blocks[blocks.length - 1].id) fail(`out-of-order block_id ${blockId}`)
    if (end - pos < 3) shortData()
    const forkFlags = raw[pos]
    const dataLen = raw.readUInt16LE(pos + 1)
    pos += 3
    const hasData = (forkFlags & BKPBLOCK_HAS_DATA) !== 0
    if (hasData && dataLen === 0) fail('BKPBLOCK_HAS_DATA set, but no data included')
    if (!hasData && dataLen !== 0) fail(`BKPBLOCK_HAS_DATA not set, but data length is ${dataLen}`)
    datatotal += dataLen

    let image: BlockImage | null = null
    let bimgLen = 0
    if (forkFlags & BKPBLOCK_HAS_IMAGE) {
      if (end - pos < 5) shortData()
      bimgLen = raw.readUInt16LE(pos)
      const holeOffset = raw.readUInt16LE(pos + 2)
      const bimgInfo = raw[pos + 4]
      pos += 5
      const compressed = (bimgInfo & BKPIMAGE_COMPRESSED) !== 0
      const hasHole = (bimgInfo & BKPIMAGE_HAS_HOLE) !== 0
      let holeLength: number
      if (compressed) {
        if (hasHole) {
          if (end - pos < 2) shortData()
          holeLength = raw.readUInt16LE(pos)
          pos += 2
        } else {
          holeLength = 0
        }
      } else {
        holeLength = BLCKSZ - bimgLen
      }
      datatotal += bimgLen
      if (hasHole && (holeOffset === 0 || holeLength === 0 || bimgLen === BLCKSZ)) {
        fail(
          `BKPIMAGE_HAS_HOLE set, but hole offset ${holeOffset} length ${holeLength} block image length ${bimgLen}`,
        )
      }
      if (!hasHole && (holeOffset !== 0 || holeLength !== 0)) {
        fail(`BKPIMAGE_HAS_HOLE not set, but hole offset ${holeOffset} length ${holeLength}`)
      }
      if (compressed && bimgLen === BLCKSZ) fail(`BKPIMAGE_COMPRESSED set, but block image length ${bimgLen}`)
      if (!hasHole && !compressed && bimgLen !== BLCKSZ) {
        fail(`neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is ${bimgLen}`)
      }
      if (hasHole && holeOffset + holeLength > BLCKSZ) {
        fail(`block image hole offset ${holeOffset} length ${holeLength} exceeds the page`)
      }
      image = {
        data: EMPTY, // the payload view is set once all headers are read
        holeOffset,
        holeLength,
        bimgInfo,
        apply: (bimgInfo & BKPIMAGE_APPLY) !== 0,
        compression: compressionOf(bimgInfo),
      }
      fpiLen += bimgLen
    }

    let spcNode: number
    let dbNode: number
    let relNode: number
    if (!(forkFlags & BKPBLOCK_SAME_REL)) {
      if (end - pos < 12) shortData()
      spcNode = raw.readUInt32LE(pos)
      dbNode = raw.readUInt32LE(pos + 4)
      relNode = raw.readUInt32LE(pos + 8)
      pos += 12
    } else {
      if (lastRel === null) fail('BKPBLOCK_SAME_REL set but no previous rel')
      spcNode = lastRel!.spcNode
      dbNode = lastRel!.dbNode
      relNode = lastRel!.relNode
    }
    if (end - pos < 4) shortData()
    const blkno = raw.readUInt32LE(pos)
    pos += 4
    const block: BlockRef = {
      id: blockId,
      forkNum: forkFlags & BKPBLOCK_FORK_MASK,
      flags: forkFlags,
      spcNode,
      dbNode,
      relNode,
      blkno,
      willInit: (forkFlags & BKPBLOCK_WILL_INIT) !== 0,
      image,
      data: hasData ? EMPTY : null,
    }
    if (!(forkFlags & BKPBLOCK_SAME_REL)) lastRel = block
    blocks.push(block)
    imageLens.push(bimgLen)
    dataLens.push(dataLen)
  }
  if (end - pos !== datatotal) shortData()

  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]
    if (b.image) {
      b.image.data = raw.subarray(pos, pos + imageLens[i])
      pos += imageLens[i]
    }
    if (b.data) {
      b.data = raw.subarray(pos, pos + dataLens[i])
      pos += dataLens[i]
    }
  }
  return {
    totLen: h.totLen,
    xid: h.xid,
    prev: h.prev,
    info: h.info,
    rmid: h.rmid,
    crc: h.crc,
    lsn,
    endLsn,
    blocks,
    mainData: raw.subarray(pos, pos + mainLen),
    origin,
    toplevelXid,
    fpiLen,
    raw,
  }
}

/** What a record is made of: decoded BlockRefs and DecodedRecords fit, so records re-encode as they came. */
export interface BlockSpec {
  id: number
  forkNum: number
  spcNode: number
  dbNode: number
  relNode: number
  blkno: number
  willInit: boolean
  image: Pick<BlockImage, 'data' | 'holeOffset' | 'holeLength' | 'bimgInfo'> | null
  data: Buffer | null
}

export interface RecordSpec {
  xid: number
  prev: Lsn
  info: number
  rmid: number
  blocks: BlockSpec[]
  mainData: Buffer
  origin?: number
  toplevelXid?: number
}

const sameRelation = (a: BlockSpec | undefined, b: BlockSpec) =>
  a !== undefined && a.spcNode === b.spcNode && a.dbNode === b.dbNode && a.relNode === b.relNode

const hasHoleLength = (img: NonNullable<BlockSpec['image']>) =>
  (img.bimgInfo & BKPIMAGE_COMPRESSED) !== 0 && (img.bimgInfo & BKPIMAGE_HAS_HOLE) !== 0

/** xl_tot_len of the record `spec` encodes to. */
export function encodedRecordSize(spec: RecordSpec): number {
  let size = SIZE_OF_XLOG_RECORD
  const blocks = spec.blocks
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]
    if (b.id > XLR_MAX_BLOCK_ID || (i > 0 && b.id <= blocks[i - 1].id)) {
      throw new RangeError(`block ids must ascend within 0..${XLR_MAX_BLOCK_ID}, got ${b.id}`)
    }
    size += 4 + (sameRelation(blocks[i - 1], b) ? 0 : 12) + 4 + (b.data?.length ?? 0)
    if (b.image) size += 5 + (hasHoleLength(b.image) ? 2 : 0) + b.image.data.length
  }
  if (spec.origin) size += 3
  if (spec.toplevelXid) size += 5
  const mainLen = spec.mainData.length
  if (mainLen > 0) size += (mainLen < 256 ? 2 : 5) + mainLen
  return size
}

/**
 * Encodes a record as XLogInsert lays it out, CRC included. A block names its relation only when it
 * differs from the previous block's (BKPBLOCK_SAME_REL otherwise), and the main data header is short when
 * it can be, so decoded records re-encode byte for byte.
 */
export function encodeRecord(spec: RecordSpec): Buffer {
  const raw = Buffer.allocUnsafe(encodedRecordSize(spec))
  encodeRecordInto(spec, raw)
  return raw
}

/**
 * encodeRecord into `out`, which holds at least encodedRecordSize(spec) bytes: a writer of many records
 * reuses one buffer instead of allocating one per record. Returns the record's length.
 */
export function encodeRecordInto(spec: RecordSpec, out: Buffer, size = encodedRecordSize(spec)): number {
  let pos = SIZE_OF_XLOG_RECORD
  const blocks = spec.blocks
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]
    const same = sameRelation(blocks[i - 1], b)
    const dataLen = b.data?.length ?? 0
    let flags = b.forkNum & BKPBLOCK_FORK_MASK
    if (b.image) flags |= BKPBLOCK_HAS_IMAGE
    if (dataLen > 0) flags |= BKPBLOCK_HAS_DATA
    if (b.willInit) flags |= BKPBLOCK_WILL_INIT
    if (same) flags |= BKPBLOCK_SAME_REL
    out[pos] = b.id
    out[pos + 1] = flags
    pos = out.writeUInt16LE(dataLen, pos + 2)
    if (b.image) {
      pos = out.writeUInt16LE(b.image.data.length, pos)
      pos = out.writeUInt16LE(b.image.holeOffset, pos)
      out[pos++] = b.image.bimgInfo
      if (hasHoleLength(b.image)) pos = out.writeUInt16LE(b.image.holeLength, pos)
    }
    if (!same) {
      pos = out.writeUInt32LE(b.spcNode >>> 0, pos)
      pos = out.writeUInt32LE(b.dbNode >>> 0, pos)
      pos = out.writeUInt32LE(b.relNode >>> 0, pos)
    }
    pos = out.writeUInt32LE(b.blkno >>> 0, pos)
  }
  if (spec.origin) {
    out[pos++] = XLR_BLOCK_ID_ORIGIN
    pos = out.writeUInt16LE(spec.origin, pos)
  }
  if (spec.toplevelXid) {
    out[pos++] = XLR_BLOCK_ID_TOPLEVEL_XID
    pos = out.writeUInt32LE(spec.toplevelXid >>> 0, pos)
  }
  const mainLen = spec.mainData.length
  if (mainLen > 0) {
    if (mainLen < 256) {
      out[pos++] = XLR_BLOCK_ID_DATA_SHORT
      out[pos++] = mainLen
    } else {
      out[pos++] = XLR_BLOCK_ID_DATA_LONG
      pos = out.writeUInt32LE(mainLen, pos)
    }
  }
  // Payloads in block order (image, then data), then the main data.
  for (const b of blocks) {
    if (b.image) pos += b.image.data.copy(out, pos)
    if (b.data && b.data.length > 0) pos += b.data.copy(out, pos)
  }
  if (mainLen > 0) spec.mainData.copy(out, pos)
  out.writeUInt32LE(size, OFF.xl_tot_len)
  out.writeUInt32LE(spec.xid >>> 0, OFF.xl_xid)
  writeLsn(out, OFF.xl_prev, spec.prev)
  out[OFF.xl_info] = spec.info
  out[OFF.xl_rmid] = spec.rmid
  out.writeUInt16LE(0, OFF.xl_rmid + 1) // the header's padding, which the CRC covers
  const raw = size === out.length ? out : out.subarray(0, size)
  out.writeUInt32LE(recordCrc(raw), OFF.xl_crc)
  return size
}
