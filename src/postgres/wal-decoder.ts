/**
 * A push decoder for the WAL byte stream: feed it bytes as they arrive (whole segment files, or XLogData
 * messages from a walsender), pull complete, CRC-checked records out.
 *
 * It checks what Postgres' xlogreader checks — page headers (magic, flags, page address, timeline,
 * system id and sizes on long headers), continuation headers with their remaining lengths, record
 * headers with their prev-links, CRCs and block headers — and stops with Postgres' reason at the first
 * invalid byte, which is how the end of WAL is found. Records that lie on one page of one fed chunk are
 * returned as views into that chunk, so chunks must not be reused by the caller after feeding.
 *
 * A decoder made with `headersOnly` finds where records end (`nextEnd`) and checks everything above
 * but each record's CRC and body, neither copying nor keeping the bytes: what a store that only
 * passes WAL on needs to know its record boundaries, as pg_receivewal needs nothing. The CRCs are
 * checked where the WAL is used — by its reader, and by the scan for the end of WAL after a crash.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { arenaConcat } from './buffer-arena.js'
import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, type Lsn, maxAlign, XLOG_BLCKSZ } from './lsn.js'
import { RM_XLOG_ID, XLOG_SWITCH, XLR_RMGR_INFO_MASK } from './rmgr.js'
import {
  checkPageHeader,
  decodePageHeader,
  pageHeaderSizeAt,
  SIZE_OF_XLOG_LONG_PHD,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
} from './wal-page.js'
import {
  checkRecordHeader,
  type DecodedRecord,
  decodeRecord,
  readRecordHeader,
  SIZE_OF_XLOG_RECORD,
  WalRecordError,
} from './xlog-record.js'

export interface WalDecoderOptions {
  /** A record start, or a page start (a record continued from the previous page is then skipped). */
  startLsn: Lsn
  segmentSize?: number
  /** The newest timeline accepted in page headers (the timeline of the segment files). */
  timeline?: number
  /** When known, checked against every long page header; otherwise learnt from the first one. */
  systemId?: bigint
  /** Start of the record before startLsn, when known: the first record's prev-link is then checked. */
  prevLsn?: Lsn
  /** Only record boundaries are wanted: read them with `nextEnd`, not `next`. */
  headersOnly?: boolean
}

export class WalDecodeError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'WalDecodeError'
  constructor(
    /** Where the invalid data was found. */
    readonly lsn: Lsn,
    readonly reason: string,
  ) {
    super(reason)
  }
}

/** What a record step yields when the decoder finds boundaries only. */
const BOUNDARY = Symbol('record boundary')

enum State {
  /** Between records: `pos` is where the next record (or page header before it) starts. */
  Start,
  /** Skipping the tail of a record continued from before the start position. */
  SkipContinuation,
  /** Gathering the pieces of a record that continues on later pages. */
  Gather,
}

export class WalDecoder {
  readonly segmentSize: number
  private readonly timeline: number
  private systemId: bigint | undefined
  private lastTimeline = 0

  private chunks: Buffer[] = []
  private chunkStarts: Lsn[] = []
  private head = 0
  private fedEnd: Lsn
  private pos: Lsn

  private state: State
  private expectedPrev: Lsn | undefined
  private lastRecordLsn: Lsn | undefined
  private failure: WalDecodeError | null = null

  private recLsn = 0
  private recTotLen = 0
  private remaining = 0
  private pieces: Buffer[] = []
  private gathered = 0
  private headerChecked = false
  private recRmid = 0
  private recInfo = 0
  private readonly headersOnly: boolean

  constructor(opts: WalDecoderOptions) {
    this.segmentSize = opts.segmentSize ?? DEFAULT_WAL_SEGMENT_SIZE
    this.timeline = opts.timeline ?? 0xffffffff
    this.systemId = opts.systemId
    this.pos = opts.startLsn
    this.fedEnd = opts.startLsn
    this.expectedPrev = opts.prevLsn
    this.headersOnly = opts.headersOnly ?? false
    this.state = opts.startLsn % XLOG_BLCKSZ === 0 ? State.SkipContinuation : State.Start
  }

  /** The position decoding has reached: after the last returned record (and its alignment padding). */
  get position(): Lsn {
    return this.pos
  }

  /** End of the bytes fed so far. */
  get inputEnd(): Lsn {
    return this.fedEnd
  }

  get lastRecord(): Lsn | undefined {
    return this.lastRecordLsn
  }

  feed(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.chunkStarts.push(this.fedEnd)
    this.fedEnd += chunk.length
  }

  /** The next complete record, or null when more input is needed. Throws WalDecodeError on invalid WAL. */
  next(): DecodedRecord | null {
    if (this.headersOnly) throw new Error('a headers-only WalDecoder yields record ends: call nextEnd()')
    return this.guarded() as DecodedRecord | null
  }

  /**
   * For a headers-only decoder: the position after the next complete record (where the next one
   * starts), or null when more input is needed. Throws WalDecodeError on invalid WAL.
   */
  nextEnd(): Lsn | null {
    if (!this.headersOnly) throw new Error('nextEnd() is for a headers-only WalDecoder')
    return this.guarded() === null ? null : this.pos
  }

  private guarded(): DecodedRecord | typeof BOUNDARY | null {
    if (this.failure) throw this.failure
    try {
      return this.step()
    } catch (err) {
      if (err instanceof WalRecordError) this.failure = new WalDecodeError(err.lsn, err.message)
      else if (err instanceof WalDecodeError) this.failure = err
      else throw err
      throw this.failure
    }
  }

  private step(): DecodedRecord | typeof BOUNDARY | null {
    for (;;) {
      switch (this.state) {
        case State.SkipContinuation: {
          // Only reached at a page start: the page may begin with the tail of an earlier record.
          const hdr = this.readPageHeader()
          if (!hdr) return null
          if (hdr.info & XLP_FIRST_IS_CONTRECORD) {
            this.remaining = hdr.remLen
            this.state = State.Gather
            this.pieces = []
            this.recLsn = -1
            continue
          }
          this.state = State.Start
          continue
        }
        case State.Start: {
          if (this.pos % XLOG_BLCKSZ === 0) {
            const hdr = this.readPageHeader()
            if (!hdr) return null
            if (hdr.info & XLP_FIRST_IS_CONTRECORD) {
              throw new WalDecodeError(this.pos, `contrecord is requested by ${formatLsn(this.pos)}`)
            }
          }
          if (this.available() < 4) return null
          const rec = this.beginRecord()
          if (rec) return rec
          continue
        }
        case State.Gather: {
          const rec = this.gather()
          if (rec === undefined) return null
          if (rec) return rec
        }
      }
    }
  }

  /** Starts the record at `pos`; returns it when it is complete at once, else switches to Gather. */
  private beginRecord(): DecodedRecord | typeof BOUNDARY | null {
    const lsn = this.pos
    const spaceOnPage = XLOG_BLCKSZ - (lsn % XLOG_BLCKSZ)
    const totLen = this.peekU32()
    if (totLen < SIZE_OF_XLOG_RECORD) {
      throw new WalDecodeError(
        lsn,
        `invalid record length at ${formatLsn(lsn)}: wanted ${SIZE_OF_XLOG_RECORD}, got ${totLen}`,
      )
    }
    this.recLsn = lsn
    this.recTotLen = totLen
    this.headerChecked = false
    if (spaceOnPage >= SIZE_OF_XLOG_RECORD) {
      // The whole header is on this page: validate it before trusting tot_len for anything.
      if (this.available() < SIZE_OF_XLOG_RECORD) return this.startGather(spaceOnPage)
      this.checkHeader(this.peek(SIZE_OF_XLOG_RECORD))
      if (totLen <= spaceOnPage && this.available() >= totLen) {
        const raw = this.take(totLen)
        return this.finishRecord(this.headersOnly ? null : raw)
      }
    }
    return this.startGather(spaceOnPage)
  }

  private startGather(spaceOnPage: number): null {
    this.pieces = []
    this.gathered = 0
    this.remaining = this.recTotLen
    this.state = State.Gather
    const n = Math.min(this.remaining, spaceOnPage, this.available())
    if (n > 0) {
      this.addPiece(this.take(n))
      this.remaining -= n
    }
    return null
  }

  /** Returns the record when complete, null when a record was abandoned, undefined when input ran out. */
  private gather(): DecodedRecord | typeof BOUNDARY | null | undefined {
    const skipping = this.recLsn < 0
    while (this.remaining > 0) {
      if (this.pos % XLOG_BLCKSZ === 0) {
        const hdr = this.readPageHeader()
        if (!hdr) return undefined
        if (!skipping) {
          if (!(hdr.info & XLP_FIRST_IS_CONTRECORD) && hdr.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
            // The rest of this record was never written; WAL continues with a new record on this page.
            this.state = State.Start
            this.expectedPrev = undefined
            return null
          }
          if (!(hdr.info & XLP_FIRST_IS_CONTRECORD)) {
            throw new WalDecodeError(this.pos, `there is no contrecord flag at ${formatLsn(this.pos)}`)
          }
          if (hdr.remLen === 0 || hdr.remLen !== this.remaining) {
            throw new WalDecodeError(
              this.pos,
              `invalid contrecord length ${hdr.remLen} (expected ${this.remaining}) at ${formatLsn(this.pos)}`,
            )
          }
        }
      }
      const n = Math.min(this.remaining, XLOG_BLCKSZ - (this.pos % XLOG_BLCKSZ), this.available())
      if (n === 0) return undefined
      // Once its header is checked, a headers-only decoder has no use for a record's bytes.
      if (skipping || (this.headersOnly && this.headerChecked)) this.skip(n)
      else this.addPiece(this.take(n))
      this.remaining -= n
    }
    if (skipping) {
      this.pos = maxAlign(this.pos)
      this.state = State.Start
      return null
    }
    if (this.headersOnly) {
      this.pieces = []
      return this.finishRecord(null)
    }
    const raw = this.pieces.length === 1 ? this.pieces[0] : arenaConcat(this.pieces, this.recTotLen)
    this.pieces = []
    if (!this.headerChecked) this.checkHeader(raw)
    return this.finishRecord(raw)
  }

  private addPiece(piece: Buffer): void {
    this.pieces.push(piece)
    this.gathered += piece.length
    if (!this.headerChecked && this.gathered >= SIZE_OF_XLOG_RECORD) {
      const first = this.pieces.length === 1 ? this.pieces[0] : arenaConcat(this.pieces, this.gathered)
      this.checkHeader(first)
    }
  }

  private checkHeader(buf: Buffer): void {
    const h = readRecordHeader(buf)
    const reason = checkRecordHeader(h, this.recLsn, this.expectedPrev)
    if (reason) throw new WalDecodeError(this.recLsn, reason)
    this.headerChecked = true
    this.recRmid = h.rmid
    this.recInfo = h.info
  }

  /** Ends the record at `pos`: decodes `raw`, or with null (headers only) just steps past it. */
  private finishRecord(raw: Buffer | null): DecodedRecord | typeof BOUNDARY {
    const lsn = this.recLsn
    const endLsn = maxAlign(this.pos)
    this.pos = endLsn
    const rec = raw === null ? BOUNDARY : decodeRecord(raw, lsn, endLsn)
    if (this.recRmid === RM_XLOG_ID && (this.recInfo & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) {
      // The rest of the segment is unused; the next record starts after the next segment's long header.
      const rest = endLsn % this.segmentSize
      if (rest !== 0) this.pos = endLsn - rest + this.segmentSize
    }
    this.expectedPrev = lsn
    this.lastRecordLsn = lsn
    this.state = State.Start
    return rec
  }

  /** Reads and validates the page header at `pos` (a page start); null when not all of it has arrived. */
  private readPageHeader() {
    const size = pageHeaderSizeAt(this.pos, this.segmentSize)
    if (this.available() < size) return null
    const pageLsn = this.pos
    const hdr = decodePageHeader(this.peek(size))
    const reason = checkPageHeader(hdr, pageLsn, {
      segmentSize: this.segmentSize,
      timeline: this.timeline,
      lastTimeline: this.lastTimeline,
      systemId: this.systemId,
    })
    if (reason) throw new WalDecodeError(pageLsn, reason)
    if (size === SIZE_OF_XLOG_LONG_PHD && this.systemId === undefined) this.systemId = hdr.systemId
    this.lastTimeline = hdr.timeline
    this.skip(size)
    return hdr
  }

  private available(): number {
    return Math.max(0, this.fedEnd - this.pos)
  }

  private dropConsumed(): void {
    while (
      this.head < this.chunks.length &&
      this.chunkStarts[this.head] + this.chunks[this.head].length <= this.pos
    ) {
      this.head++
    }
    if (this.head > 64) {
      this.chunks = this.chunks.slice(this.head)
      this.chunkStarts = this.chunkStarts.slice(this.head)
      this.head = 0
    }
  }

  private peek(n: number): Buffer {
    this.dropConsumed()
    const c = this.chunks[this.head]
    const off = this.pos - this.chunkStarts[this.head]
    if (off + n <= c.length) return c.subarray(off, off + n)
    const out = Buffer.allocUnsafe(n)
    let copied = 0
    let i = this.head
    let o = off
    while (copied < n) {
      const ch = this.chunks[i]
      const k = Math.min(n - copied, ch.length - o)
      ch.copy(out, copied, o, o + k)
      copied += k
      i++
      o = 0
    }
    return out
  }

  private peekU32(): number {
    return this.peek(4).readUInt32LE(0)
  }

  private take(n: number): Buffer {
    const b = this.peek(n)
    this.pos += n
    return b
  }

  private skip(n: number): void {
    this.pos += n
  }
}
