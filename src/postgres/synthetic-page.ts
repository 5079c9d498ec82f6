/**
 * Heap pages for synthetic WAL: what a table of narrow rows looks like — a page header, line pointers
 * growing up, tuples (a HeapTupleHeader and 120 bytes of data) growing down, and the free space between
 * them that a full-page image leaves out as its hole. Each (block, version) gives the same page every
 * time, with a tuple count that varies, so a reader can tell what a block must hold without keeping it.
 */
import {
  BLCKSZ,
  LP_NORMAL,
  PG_PAGE_LAYOUT_VERSION,
  SIZE_OF_ITEM_ID,
  SIZE_OF_PAGE_HEADER_DATA,
} from './data-page.js'
import { FrozenTransactionId } from './transaction-id.js'

/** SizeofHeapTupleHeader (23) padded to MAXALIGN: t_hoff of a row without nulls. */
const TUPLE_HEADER = 24
const TUPLE_DATA = 120
const TUPLE_LEN = TUPLE_HEADER + TUPLE_DATA
const NATTS = 3
const HEAP_XMIN_COMMITTED = 0x0100
const HEAP_XMAX_INVALID = 0x0800
const MIN_TUPLES = 10
const TUPLE_SPREAD = 40

/** Pseudo-random bytes the tuples' data is cut from: fixed, so pages are the same on every run. */
const POOL = (() => {
  const pool = Buffer.alloc(64 * 1024)
  let x = 0x9e3779b9
  for (let i = 0; i < pool.length; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    pool.writeInt32LE(x | 0, i)
  }
  return pool
})()

export interface HeapPageLayout {
  /** pd_lower and pd_upper: the hole of the page's image lies between them. */
  lower: number
  upper: number
}

/** Version `version` of block `blkno`, the whole page: pd_lsn and pd_checksum are zero. */
export function syntheticHeapPage(blkno: number, version: number): Buffer {
  const page = Buffer.alloc(BLCKSZ)
  writeHeapPage(blkno, version, page, false)
  return page
}

/**
 * The same page as its full-page image stores it, without the hole, written into `out` (at least BLCKSZ
 * bytes, reused by the caller): the image is out[0, BLCKSZ - (upper - lower)).
 */
export function syntheticHeapImage(blkno: number, version: number, out: Buffer): HeapPageLayout {
  return writeHeapPage(blkno, version, out, true)
}

/** Between 10 and 49 rows, never filling the page. */
function writeHeapPage(blkno: number, version: number, out: Buffer, withoutHole: boolean): HeapPageLayout {
  const n = MIN_TUPLES + ((blkno * 7 + version * 13) % TUPLE_SPREAD)
  const lower = SIZE_OF_PAGE_HEADER_DATA + n * SIZE_OF_ITEM_ID
  const upper = BLCKSZ - n * TUPLE_LEN
  const shift = withoutHole ? upper - lower : 0
  out.fill(0, 0, SIZE_OF_PAGE_HEADER_DATA)
  out.writeUInt16LE(lower, 12)
  out.writeUInt16LE(upper, 14)
  out.writeUInt16LE(BLCKSZ, 16)
  out.writeUInt16LE(BLCKSZ | PG_PAGE_LAYOUT_VERSION, 18)
  let from = ((blkno * 131 + version * 17) * 8) % (POOL.length - n * TUPLE_DATA)
  for (let i = 0; i < n; i++) {
    const lpOff = upper + (n - 1 - i) * TUPLE_LEN
    const at = lpOff - shift
    out.writeUInt32LE((lpOff | (LP_NORMAL << 15) | (TUPLE_LEN << 17)) >>> 0, SIZE_OF_PAGE_HEADER_DATA + i * 4)
    out.writeUInt32LE(FrozenTransactionId, at) // t_xmin: rows every snapshot sees
    out.fill(0, at + 4, at + 12) // t_xmax, t_cid
    out.writeUInt16LE(blkno >>> 16, at + 12) // t_ctid: the row itself
    out.writeUInt16LE(blkno & 0xffff, at + 14)
    out.writeUInt16LE(i + 1, at + 16)
    out.writeUInt16LE(NATTS, at + 18)
    out.writeUInt16LE(HEAP_XMIN_COMMITTED | HEAP_XMAX_INVALID, at + 20)
    out[at + 22] = TUPLE_HEADER
    out[at + 23] = 0
    POOL.copy(out, at + TUPLE_HEADER, from, from + TUPLE_DATA)
    from += TUPLE_DATA
  }
  return { lower, upper }
}
