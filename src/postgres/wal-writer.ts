/**
 * Lays records into WAL pages as Postgres does: page headers (the long one at segment starts), records
 * at 8-byte aligned positions, and continuation headers with XLP_FIRST_IS_CONTRECORD and the remaining
 * length for records that cross pages. Used to synthesise WAL (a checkpoint for a new compute, the stream
 * of `wal load --synthetic`) and in tests. A long stream is taken out as it grows (`take`), so the writer
 * holds no more than the page being filled.
 */
import { type Lsn, maxAlign, writeLsn, XLOG_BLCKSZ } from './lsn.js'
import { RM_XLOG_ID, XLOG_SWITCH, XLR_RMGR_INFO_MASK } from './rmgr.js'
import {
  encodePageHeader,
  pageHeaderSizeAt,
  XLOG_PAGE_MAGIC,
  XLP_BKP_REMOVABLE,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
} from './wal-page.js'
import {
  encodedRecordSize,
  encodeRecordInto,
  RECORD_HEADER_OFFSETS,
  type RecordSpec,
  recordCrc,
} from './xlog-record.js'

const {
  xl_prev: XL_PREV_OFFSET,
  xl_crc: XL_CRC_OFFSET,
  xl_rmid: XL_RMID_OFFSET,
  xl_info: XL_INFO_OFFSET,
} = RECORD_HEADER_OFFSETS

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
  /** LSN of buf[0]: the start of startLsn's page, or of the page being filled at the last take. */
  private base: Lsn
  private pos: Lsn
  private prev: Lsn
  /** Where the next take begins. */
  private taken: Lsn
  /** Each record is encoded here before it is laid into pages. */
  private scratch = Buffer.alloc(XLOG_BLCKSZ * 2)

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
    this.taken = startLsn
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
    const rec = { ...spec, prev: this.prev }
    const size = encodedRecordSize(rec)
    if (size > this.scratch.length) this.scratch = Buffer.alloc(size)
    encodeRecordInto(rec, this.scratch, size)
    return this.lay(this.scratch.subarray(0, size))
  }

  /**
   * Appends an encoded record after setting its prev-link and CRC: a writer of many records of one shape
   * patches a template (its xid, its data) instead of encoding each. `raw` is copied.
   */
  appendEncoded(raw: Buffer): Lsn {
    writeLsn(raw, XL_PREV_OFFSET, this.prev)
    raw.writeUInt32LE(recordCrc(raw), XL_CRC_OFFSET)
    return this.lay(raw)
  }

  private lay(raw: Buffer): Lsn {
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
    const rmid = raw[XL_RMID_OFFSET]
    if (rmid === RM_XLOG_ID && (raw[XL_INFO_OFFSET] & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) {
      // Nothing more goes into this segment; readers continue at the next one.
      const rest = this.pos % this.opts.segmentSize
      if (rest !== 0) this.pos += this.opts.segmentSize - rest
    }
    this.prev = start
    return start
  }

  /**
   * The WAL from the end of the last take (startLsn at first) to endLsn, as a walsender sends it: handed
   * over, and forgotten but for the page being filled, whose header is already in place.
   */
  take(): Buffer {
    const out = this.buf.subarray(this.taken - this.base, this.pos - this.base)
    // The taken bytes stay where they are, handed out; the page being filled moves to a fresh buffer.
    const page = this.pos - (this.pos % XLOG_BLCKSZ)
    const fresh = Buffer.alloc(Math.max(4 * XLOG_BLCKSZ, this.buf.length))
    this.buf.copy(fresh, 0, page - this.base, this.pos - this.base)
    this.buf = fresh
    this.base = page
    this.taken = this.pos
    return out
  }

  /** Whole pages from startLsn's page (or the last take's) through the page holding the end; unused space is zero. */
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
