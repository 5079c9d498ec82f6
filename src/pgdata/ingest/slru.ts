/**
 * SLRU segments as ingest changes them, the way Postgres' slru.c treats its files: a page is zeroed or
 * changed in place, a segment that does not exist yet is created (the pages before the one written read
 * as zeros, as the holes of a file written at an offset do), and truncation removes whole segments.
 * A segment exists when the SLRU's directory lists it; what a removed segment held stays in history but
 * never shows through when the segment comes back.
 */

import { BLCKSZ } from '../../postgres/data-page.js'
import { type PagePrecedes, SLRU_PAGES_PER_SEGMENT, slruMayDeleteSegment } from '../../postgres/slru.js'
import {
  decodeSize,
  decodeU32Set,
  encodeSize,
  encodeU32Set,
  type SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
} from '../datadir-mapping.js'
import type { IngestState } from './state.js'

const segmentOf = (pageno: number) => Math.floor(pageno / SLRU_PAGES_PER_SEGMENT)
const blockOf = (pageno: number) => pageno % SLRU_PAGES_PER_SEGMENT

function segments(s: IngestState, kind: SlruKind): Set<number> {
  const dir = s.read(slruDirKey(kind))
  return new Set(dir ? decodeU32Set(dir, 'SLRU directory') : [])
}

/** Pages of a listed segment; 0 for one that does not exist. */
function segmentSize(s: IngestState, kind: SlruKind, segno: number, segs: Set<number>): number {
  if (!segs.has(segno)) return 0
  const v = s.read(slruSegSizeKey(kind, segno))
  return v ? decodeSize(v) : 0
}

/** SimpleLruDoesPhysicalPageExist */
export function slruPageExists(s: IngestState, kind: SlruKind, pageno: number): boolean {
  return blockOf(pageno) < segmentSize(s, kind, segmentOf(pageno), segments(s, kind))
}

/** Makes room for `pageno` in its segment, creating the segment; the pages in between become zeros. */
function extend(s: IngestState, kind: SlruKind, pageno: number): void {
  const segno = segmentOf(pageno)
  const blk = blockOf(pageno)
  const segs = segments(s, kind)
  const size = segmentSize(s, kind, segno, segs)
  if (!segs.has(segno)) {
    segs.add(segno)
    s.put(slruDirKey(kind), encodeU32Set(segs))
  }
  if (blk < size) return
  const zero = Buffer.alloc(BLCKSZ)
  for (let b = size; b < blk; b++) s.put(slruBlockKey(kind, segno, b), zero)
  s.put(slruSegSizeKey(kind, segno), encodeSize(blk + 1))
}

/** SimpleLruZeroPage written out: the page is zeros, the segment created or extended to hold it. */
export function zeroSlruPage(s: IngestState, kind: SlruKind, pageno: number): void {
  extend(s, kind, pageno)
  s.put(slruBlockKey(kind, segmentOf(pageno), blockOf(pageno)), Buffer.alloc(BLCKSZ))
}

/**
 * Changes one page. A page that does not exist reads as zeros, as Postgres' redo reads a page of a
 * missing segment file, and is created. (Redo would fail on a page past the end of an existing file;
 * Postgres' own WAL never asks for one, since pages are zeroed in order, so zeros serve there too.)
 */
export function updateSlruPage(
  s: IngestState,
  kind: SlruKind,
  pageno: number,
  change: (page: Buffer) => void,
): void {
  const key = slruBlockKey(kind, segmentOf(pageno), blockOf(pageno))
  const cur = slruPageExists(s, kind, pageno) ? s.read(key) : null
  if (!cur) extend(s, kind, pageno)
  const page = cur ? Buffer.from(cur) : Buffer.alloc(BLCKSZ)
  change(page)
  s.put(key, page)
}

/** Removes the listed segments for which `remove` says so. */
export function removeSlruSegments(s: IngestState, kind: SlruKind, remove: (segno: number) => boolean): void {
  const segs = segments(s, kind)
  const kept = [...segs].filter((segno) => !remove(segno))
  if (kept.length !== segs.size) s.put(slruDirKey(kind), encodeU32Set(kept))
}

/** SimpleLruTruncate: every segment whose pages all precede `cutoffPage` goes. */
export function truncateSlru(
  s: IngestState,
  kind: SlruKind,
  precedes: PagePrecedes,
  cutoffPage: number,
): void {
  removeSlruSegments(s, kind, (segno) => slruMayDeleteSegment(precedes, segno, cutoffPage))
}
