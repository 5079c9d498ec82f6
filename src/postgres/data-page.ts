/**
 * The standard data page of PG15 relations (heap, indexes, FSM, VM): a 24-byte PageHeaderData, then an
 * array of 4-byte line pointers growing up from pd_lower, tuples growing down from pd_upper, and an
 * access-method-specific area from pd_special to the end of the page.
 *
 * All fields are little-endian (x86-64), but pd_lsn is not a plain uint64: it is PageXLogRecPtr, two
 * uint32 halves with the high half first, so a page's LSN bytes differ from a WAL record's.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { type Lsn, LsnError } from './lsn.js'

export const BLCKSZ = 8192
export const SIZE_OF_PAGE_HEADER_DATA = 24
export const PG_PAGE_LAYOUT_VERSION = 4
export const SIZE_OF_ITEM_ID = 4

/** Some line pointers are LP_UNUSED: a hint for PageAddItem, never relied on. */
export const PD_HAS_FREE_LINES = 0x1
/** No room for a new tuple: a hint for heap updates. */
export const PD_PAGE_FULL = 0x2
/** Every tuple on the page is visible to all transactions. */
export const PD_ALL_VISIBLE = 0x4
/** Any other bit set means a corrupt header. */
export const PD_VALID_FLAG_BITS = 0x7

/** lp_flags values of a line pointer. */
export const LP_UNUSED = 0
export const LP_NORMAL = 1
export const LP_REDIRECT = 2
export const LP_DEAD = 3

const OFF = {
  pd_lsn: 0,
  pd_checksum: 8,
  pd_flags: 10,
  pd_lower: 12,
  pd_upper: 14,
  pd_special: 16,
  pd_pagesize_version: 18,
  pd_prune_xid: 20,
} as const

const TWO_32 = 0x1_0000_0000

export interface PageHeader {
  /** pd_lsn: end LSN of the WAL record that last changed the page. */
  lsn: Lsn
  /** pd_checksum: 0 unless the cluster has data checksums. */
  checksum: number
  flags: number
  /** End of the line pointer array. */
  lower: number
  /** Start of tuple space; 0 on a never-initialised (all-zero) page. */
  upper: number
  /** Start of the access method's special space; BLCKSZ when there is none. */
  special: number
  /** High byte(s) of pd_pagesize_version. */
  pageSize: number
  /** Low byte of pd_pagesize_version, PG_PAGE_LAYOUT_VERSION on every page PG15 writes. */
  layoutVersion: number
  /** Oldest unpruned XMAX on the page, or 0. */
  pruneXid: number
}

export interface ItemId {
  /** lp_off: byte offset of the tuple from the start of the page. */
  offset: number
  /** lp_flags: LP_UNUSED, LP_NORMAL, LP_REDIRECT or LP_DEAD. */
  flags: number
  /** lp_len: tuple length in bytes. */
  length: number
}

export class PageFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'PageFormatError'
}

function assertHeaderFits(page: Buffer, end = SIZE_OF_PAGE_HEADER_DATA): void {
  if (page.length < end) {
    throw new PageFormatError(`page buffer is ${page.length} bytes, needs at least ${end}`)
  }
}

export function getPageLsn(page: Buffer): Lsn {
  assertHeaderFits(page, 8)
  const hi = page.readUInt32LE(OFF.pd_lsn)
  const lo = page.readUInt32LE(OFF.pd_lsn + 4)
  if (hi >= 0x20_0000) throw new LsnError(`page LSN ${hi.toString(16)}/${lo.toString(16)} is above 2^53`)
  return hi * TWO_32 + lo
}

export function setPageLsn(page: Buffer, lsn: Lsn): void {
  assertHeaderFits(page, 8)
  const hi = Math.floor(lsn / TWO_32)
  page.writeUInt32LE(hi, OFF.pd_lsn)
  page.writeUInt32LE(lsn - hi * TWO_32, OFF.pd_lsn + 4)
}

/** A page that was extended but never initialised is all zeros; Postgres recognises it by pd_upper == 0. */
export function isNewPage(page: Buffer): boolean {
  assertHeaderFits(page)
  return page.readUInt16LE(OFF.pd_upper) === 0
}

export function readPageHeader(page: Buffer): PageHeader {
  assertHeaderFits(page)
  const sizeVersion = page.readUInt16LE(OFF.pd_pagesize_version)
  return {
    lsn: getPageLsn(page),
    checksum: page.readUInt16LE(OFF.pd_checksum),
    flags: page.readUInt16LE(OFF.pd_flags),
    lower: page.readUInt16LE(OFF.pd_lower),
    upper: page.readUInt16LE(OFF.pd_upper),
    special: page.readUInt16LE(OFF.pd_special),
    pageSize: sizeVersion & 0xff00,
    layoutVersion: sizeVersion & 0x00ff,
    pruneXid: page.readUInt32LE(OFF.pd_prune_xid),
  }
}

export function writePageHeader(page: Buffer, header: PageHeader): void {
  assertHeaderFits(page)
  if ((header.pageSize & 0xff) !== 0 || header.layoutVersion > 0xff) {
    throw new PageFormatError(
      `pageSize ${header.pageSize} and layoutVersion ${header.layoutVersion} do not share pd_pagesize_version`,
    )
  }
  setPageLsn(page, header.lsn)
  page.writeUInt16LE(header.checksum, OFF.pd_checksum)
  page.writeUInt16LE(header.flags, OFF.pd_flags)
  page.writeUInt16LE(header.lower, OFF.pd_lower)
  page.writeUInt16LE(header.upper, OFF.pd_upper)
  page.writeUInt16LE(header.special, OFF.pd_special)
  page.writeUInt16LE(header.pageSize | header.layoutVersion, OFF.pd_pagesize_version)
  page.writeUInt32LE(header.pruneXid, OFF.pd_prune_xid)
}

/** Number of line pointers, i.e. the highest OffsetNumber in use (PageGetMaxOffsetNumber). */
export function lineCount(page: Buffer): number {
  assertHeaderFits(page)
  const lower = page.readUInt16LE(OFF.pd_lower)
  return lower <= SIZE_OF_PAGE_HEADER_DATA
    ? 0
    : Math.floor((lower - SIZE_OF_PAGE_HEADER_DATA) / SIZE_OF_ITEM_ID)
}

/**
 * Reads line pointer `offnum`, 1-based like Postgres' OffsetNumber. The 32-bit word packs lp_off in bits
 * 0-14, lp_flags in bits 15-16 and lp_len in bits 17-31 (C bit-fields, allocated from the low bit on x86-64).
 */
export function readItemId(page: Buffer, offnum: number): ItemId {
  const count = lineCount(page)
  if (!Number.isInteger(offnum) || offnum < 1 || offnum > count) {
    throw new PageFormatError(`line pointer ${offnum} is out of range: the page has ${count}`)
  }
  const word = page.readUInt32LE(SIZE_OF_PAGE_HEADER_DATA + (offnum - 1) * SIZE_OF_ITEM_ID)
  return { offset: word & 0x7fff, flags: (word >>> 15) & 0x3, length: word >>> 17 }
}
