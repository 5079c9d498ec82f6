/**
 * WAL page headers (XLogPageHeaderData / XLogLongPageHeaderData).
 *
 * Every 8 KiB WAL page starts with a short header; the first page of a segment has the long one, which also
 * names the cluster (system identifier) and the segment and page sizes.
 */
import { formatLsn, type Lsn, maxAlign, readLsnUnchecked, walFileName, writeLsn, XLOG_BLCKSZ } from './lsn.js'

export const XLOG_PAGE_MAGIC = 0xd110

export const XLP_FIRST_IS_CONTRECORD = 0x0001
export const XLP_LONG_HEADER = 0x0002
export const XLP_BKP_REMOVABLE = 0x0004
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
export const XLP_ALL_FLAGS = 0x000f

export const SIZE_OF_XLOG_SHORT_PHD = 24
export const SIZE_OF_XLOG_LONG_PHD = 40

const OFF = {
  xlp_magic: 0,
  xlp_info: 2,
  xlp_tli: 4,
  xlp_pageaddr: 8,
  xlp_rem_len: 16,
  xlp_sysid: 24,
  xlp_seg_size: 32,
  xlp_xlog_blcksz: 36,
} as const

export interface WalPageHeader {
  magic: number
  info: number
  timeline: number
  pageAddr: Lsn
  remLen: number
  /** Present on long headers only. */
  systemId?: bigint
  segmentSize?: number
  xlogBlcksz?: number
}

export function pageHeaderSize(info: number): number {
  return info & XLP_LONG_HEADER ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
}

/** Header size at a page-aligned position: the first page of each segment carries the long header. */
export function pageHeaderSizeAt(pageLsn: Lsn, segSize: number): number {
  return pageLsn % segSize === 0 ? SIZE_OF_XLOG_LONG_PHD : SIZE_OF_XLOG_SHORT_PHD
}

export function decodePageHeader(buf: Buffer, offset = 0): WalPageHeader {
  const info = buf.readUInt16LE(offset + OFF.xlp_info)
  const header: WalPageHeader = {
    magic: buf.readUInt16LE(offset + OFF.xlp_magic),
    info,
    timeline: buf.readUInt32LE(offset + OFF.xlp_tli),
    pageAddr: readLsnUnchecked(buf, offset + OFF.xlp_pageaddr),
    remLen: buf.readUInt32LE(offset + OFF.xlp_rem_len),
  }
  if (info & XLP_LONG_HEADER && buf.length - offset >= SIZE_OF_XLOG_LONG_PHD) {
    header.systemId = buf.readBigUInt64LE(offset + OFF.xlp_sysid)
    header.segmentSize = buf.readUInt32LE(offset + OFF.xlp_seg_size)
    header.xlogBlcksz = buf.readUInt32LE(offset + OFF.xlp_xlog_blcksz)
  }
  return header
}

export function encodePageHeader(h: WalPageHeader, out: Buffer, offset = 0): number {
  const size = pageHeaderSize(h.info)
  out.fill(0, offset, offset + size)
  out.writeUInt16LE(h.magic, offset + OFF.xlp_magic)
  out.writeUInt16LE(h.info, offset + OFF.xlp_info)
  out.writeUInt32LE(h.timeline, offset + OFF.xlp_tli)
  writeLsn(out, offset + OFF.xlp_pageaddr, h.pageAddr)
  out.writeUInt32LE(h.remLen, offset + OFF.xlp_rem_len)
  if (h.info & XLP_LONG_HEADER) {
    out.writeBigUInt64LE(h.systemId ?? 0n, offset + OFF.xlp_sysid)
    out.writeUInt32LE(h.segmentSize ?? 0, offset + OFF.xlp_seg_size)
    out.writeUInt32LE(h.xlogBlcksz ?? XLOG_BLCKSZ, offset + OFF.xlp_xlog_blcksz)
  }
  return size
}

export interface PageCheckContext {
  segmentSize: number
  /** The newest timeline the reader accepts: the file's timeline. */
  timeline: number
  /** Timeline of the previous page read; page timelines never go down. */
  lastTimeline: number
  systemId?: bigint
}

/**
 * Checks a page header as Postgres' XLogReaderValidatePageHeader does and returns the reason it is
 * invalid, in Postgres' words, or null when it is valid.
 */
export function checkPageHeader(h: WalPageHeader, pageLsn: Lsn, ctx: PageCheckContext): string | null {
  const segNo = Math.floor(pageLsn / ctx.segmentSize)
  const where = () =>
    `in log segment ${walFileName(ctx.timeline, segNo, ctx.segmentSize)}, offset ${pageLsn % ctx.segmentSize}`
  if (h.magic !== XLOG_PAGE_MAGIC) {
    return `invalid magic number ${hex4(h.magic)} ${where()}`
  }
  if ((h.info & ~XLP_ALL_FLAGS) !== 0) return `invalid info bits ${hex4(h.info)} ${where()}`
  if (h.info & XLP_LONG_HEADER) {
    if (ctx.systemId !== undefined && h.systemId !== ctx.systemId) {
      return `WAL file is from different database system: WAL file database system identifier is ${h.systemId}, expected ${ctx.systemId}`
    }
    if (h.segmentSize !== ctx.segmentSize) {
      return 'WAL file is from different database system: incorrect segment size in page header'
    }
    if (h.xlogBlcksz !== XLOG_BLCKSZ) {
      return 'WAL file is from different database system: incorrect XLOG_BLCKSZ in page header'
    }
  } else if (pageLsn % ctx.segmentSize === 0) {
    // The first page of a segment must carry the long header.
    return `invalid info bits ${hex4(h.info)} ${where()}`
  }
  if (h.pageAddr !== pageLsn) return `unexpected pageaddr ${formatLsn(h.pageAddr)} ${where()}`
  if (h.timeline < ctx.lastTimeline || h.timeline > ctx.timeline) {
    return `out-of-sequence timeline ID ${h.timeline} (after ${ctx.lastTimeline}) ${where()}`
  }
  return null
}

function hex4(v: number): string {
  return v.toString(16).toUpperCase().padStart(4, '0')
}

/**
 * Where a record of `totLen` bytes starting at `start` ends, as Postgres stamps it: past its last byte,
 * page headers skipped, then MAXALIGNed (a page boundary when it ends exactly there).
 */
export function recordEndLsn(start: Lsn, totLen: number, segSize: number): Lsn {
  let pos = start
  let left = totLen
  for (;;) {
    const room = XLOG_BLCKSZ - (pos % XLOG_BLCKSZ)
    if (left <= room) {
      pos += left
      break
    }
    left -= room
    pos += room
    pos += pageHeaderSizeAt(pos, segSize)
  }
  return maxAlign(pos)
}

/**
 * The newest LSN that holds the data of WAL ending at `end` (a record's end), whatever is written next:
 * the next record starts at the MAXALIGNed position, or after the page header when that is a page
 * boundary, and its 24-byte header alone takes it past the longest page header. This is where an idle
 * compute's pg_current_wal_insert_lsn() lies; it holds without knowing the segment size.
 */
export function walQuietUntil(end: Lsn): Lsn {
  const next = maxAlign(end)
  return next % XLOG_BLCKSZ === 0 ? next + SIZE_OF_XLOG_LONG_PHD : next
}
