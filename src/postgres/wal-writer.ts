/**
 * Lays records into WAL pages as Postgres does: page headers (the long one at segment starts), records
 * at 8-byte aligned positions, and continuation headers with XLP_FIRST_IS_CONTRECORD and the remaining
 * length for records that cross pages. Used to synthesise WAL (a checkpoint for a new compute) and in tests.
 */
import { type Lsn, maxAlign, XLOG_BLCKSZ } from './lsn.js'
import { RM_XLOG_ID, XLOG_SWITCH, XLR_RMGR_INFO_MASK } from './rmgr.js'
import {
  encodePageHeader,
  pageHeaderSizeAt,
  XLOG_PAGE_MAGIC,
  XLP_BKP_REMOVABLE,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
} from './wal-page.js'
import { encodeRecord, type RecordSpec } from './xlog-record.js'

export interface WalWriterOptions {
  /** Where the first record goes: 8-aligned and not inside a page header. */
  startLsn: Lsn
  segmentSize: number
  timeline: number
  systemId: bigint
  /** Start of the record before startLsn: the first record's prev-link. */
  prevLsn: Lsn
}

export class WalWriter {
  private buf: Buffer
  /** LSN of buf[0]: the start of startLsn's page. */
  private readonly base: Lsn
  private pos: Lsn
  private prev: Lsn

  constructor(private readonly opts: WalWriterOptions) {
    const { startLsn, segmentSize } = opts
    const page = startLsn - (startLsn % XLOG_BLCKSZ)
    const hdr = pageHeaderSizeAt(page, segmentSize)
    if (startLsn % 8 !== 0 || (startLsn > page && startLsn < page + hdr)) {
      throw new RangeError(`WAL writing must start at an 8-aligned position outside page headers`)
    }
    this.base = page
    this.buf = Buffer.alloc(4 * XLOG_BLCKSZ)
    this.prev = opts.prevLsn
    this.pos = startLsn
    if (startLsn > page) {
      // The bytes before the first record are shown as the tail of an earlier record, so that readers
      // starting at the page (pg_waldump, XLogFindNextRecord) land exactly on startLsn.
      this.writePageHeader(page, startLsn - page - hdr)
    }
  }

  /** The end of the last record: where the next one would start (before any page header). */
  get endLsn(): Lsn {
    return this.pos
  }

  /** Appends a record whose prev-link is the previous record; returns its start LSN. */
  append(spec: Omit<RecordSpec, 'prev'>): Lsn {
    const raw = encodeRecord({ ...spec, prev: this.prev })
    if (this.pos % XLOG_BLCKSZ === 0) this.pos += this.writePageHeader(this.pos, 0)
    const start = this.pos
    let done = 0
    while (done < raw.length) {
      if (this.pos % XLOG_BLCKSZ === 0) this.pos += this.writePageHeader(this.pos, raw.length - done)
      const n = Math.min(raw.length - done, XLOG_BLCKSZ - (this.pos % XLOG_BLCKSZ))
      this.ensure(this.pos + n)
      raw.copy(this.buf, this.pos - this.base, done, done + n)
      this.pos += n
      done += n
    }
    this.pos = maxAlign(this.pos)
    if (spec.rmid === RM_XLOG_ID && (spec.info & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) {
      // Nothing more goes into this segment; readers continue at the next one.
      const rest = this.pos % this.opts.segmentSize
      if (rest !== 0) this.pos += this.opts.segmentSize - rest
    }
    this.prev = start
    return start
  }

  /** Whole pages from startLsn's page through the page holding the end; unused space is zero. */
  bytes(): Buffer {
    const end = Math.ceil((this.pos - this.base) / XLOG_BLCKSZ) * XLOG_BLCKSZ
    this.ensure(this.base + end)
    return this.buf.subarray(0, end)
  }

  private writePageHeader(pageLsn: Lsn, remLen: number): number {
    const long = pageLsn % this.opts.segmentSize === 0
    this.ensure(pageLsn + XLOG_BLCKSZ)
    return encodePageHeader(
      {
        magic: XLOG_PAGE_MAGIC,
        info: XLP_BKP_REMOVABLE | (remLen > 0 ? XLP_FIRST_IS_CONTRECORD : 0) | (long ? XLP_LONG_HEADER : 0),
        timeline: this.opts.timeline,
        pageAddr: pageLsn,
        remLen,
        systemId: this.opts.systemId,
        segmentSize: this.opts.segmentSize,
        xlogBlcksz: XLOG_BLCKSZ,
      },
      this.buf,
      pageLsn - this.base,
    )
  }

  private ensure(lsn: Lsn): void {
    const need = lsn - this.base
    if (need <= this.buf.length) return
    const grown = Buffer.alloc(Math.max(need, this.buf.length * 2))
    this.buf.copy(grown)
    this.buf = grown
  }
}
