/**
 * WAL that Postgres could have written, made up on the spot for `zenith wal load --synthetic`: it goes on
 * from a timeline's end (its LSN, the record before, its system id, segment size and timeline), takes
 * OIDs and xids where the timeline's checkpoint says the next ones are, and is handed out in chunks of
 * whole records as fast as the caller asks.
 *
 * It begins as a table is created — an XLOG NEXTOID taking a batch of OIDs, then SMGR CREATE of the
 * relation's main fork — and goes on in one of three mixes:
 * - `images`: full-page images (XLOG FPI, as log_newpage writes them) of the relation's blocks in turn,
 *   heap pages with a hole, the relation growing to `relationBlocks` and then rewritten from block 0;
 * - `small`: commits of transactions, each a 40-byte record whose only effect is a status bit in
 *   pg_xact, with CLOG ZEROPAGE as a new xid starts a CLOG page — per-record work without images;
 * - `mixed`: a transaction writes one page image and commits.
 */
import { BLCKSZ, setPageLsn } from './data-page.js'
import type { Lsn } from './lsn.js'
import { encodeClogZeroPage } from './records/clog.js'
import { encodeSmgrCreate } from './records/smgr.js'
import { encodePlainCommit } from './records/xact.js'
import { encodeNextOid } from './records/xlog.js'
import { DEFAULTTABLESPACE_OID, type RelFileNode } from './relfile.js'
import {
  CLOG_ZEROPAGE,
  RM_CLOG_ID,
  RM_SMGR_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  XLOG_FPI,
  XLOG_NEXTOID,
  XLOG_SMGR_CREATE,
  XLOG_XACT_COMMIT,
} from './rmgr.js'
import { CLOG_XACTS_PER_PAGE, transactionIdToClogPage } from './slru.js'
import { syntheticHeapImage, syntheticHeapPage } from './synthetic-page.js'
import { pgNowUs } from './timestamp.js'
import { FirstNormalTransactionId } from './transaction-id.js'
import { WalWriter } from './wal-writer.js'
import {
  BKPIMAGE_APPLY,
  BKPIMAGE_HAS_HOLE,
  encodeRecord,
  MAIN_FORKNUM,
  RECORD_HEADER_OFFSETS,
} from './xlog-record.js'

export const RECORD_MIXES = ['images', 'small', 'mixed'] as const
export type RecordMix = (typeof RECORD_MIXES)[number]

/** The database the relation goes in: `postgres`, which initdb makes with OID 5 in PG15. */
export const POSTGRES_DB_OID = 5
/** VAR_OID_PREFETCH: how many OIDs a NEXTOID record takes at a time. */
const OID_PREFETCH = 8192
const TWO_32 = 0x1_0000_0000

export interface SyntheticWalOptions {
  startLsn: Lsn
  prevLsn: Lsn
  systemId: bigint
  segmentSize: number
  timeline: number
  /** FullTransactionId: the first xid the commits take. */
  nextXid: number
  /** The relation's OID (and relfilenode). */
  nextOid: number
  mix: RecordMix
  /** Blocks the images cycle through (16 MiB of relation by default). */
  relationBlocks?: number
}

export class SyntheticWal {
  readonly rel: RelFileNode
  readonly relationBlocks: number
  /** Records, commits and page images written so far. */
  records = 0
  commits = 0
  images = 0
  /** FullTransactionId of the next commit. */
  nextXid: number
  private readonly writer: WalWriter
  /** Per block, the end of the record that carried its latest image: the page's pd_lsn after ingest. */
  private readonly imageEnds: Float64Array
  /** The image being written: one buffer for all of them. */
  private readonly scratch = Buffer.alloc(BLCKSZ)
  /** Every commit is this record with its xid and time patched in. */
  private readonly commitRecord = encodeRecord({
    xid: 0,
    prev: 0,
    rmid: RM_XACT_ID,
    info: XLOG_XACT_COMMIT,
    blocks: [],
    mainData: encodePlainCommit(0n),
  })
  /** The commits of one chunk share its time: they are microseconds apart. */
  private commitTime = 0n

  constructor(private readonly opts: SyntheticWalOptions) {
    this.writer = new WalWriter({
      startLsn: opts.startLsn,
      segmentSize: opts.segmentSize,
      timeline: opts.timeline,
      systemId: opts.systemId,
      prevLsn: opts.prevLsn,
    })
    this.relationBlocks = opts.relationBlocks ?? 2048
    this.imageEnds = new Float64Array(this.relationBlocks)
    this.nextXid = opts.nextXid
    this.rel = { spcNode: DEFAULTTABLESPACE_OID, dbNode: POSTGRES_DB_OID, relNode: opts.nextOid }
    this.append(0, RM_XLOG_ID, XLOG_NEXTOID, encodeNextOid((opts.nextOid + OID_PREFETCH) % TWO_32))
    this.append(0, RM_SMGR_ID, XLOG_SMGR_CREATE, encodeSmgrCreate(this.rel, MAIN_FORKNUM))
  }

  /** Where the next record goes: the end of all WAL made so far. */
  get endLsn(): Lsn {
    return this.writer.endLsn
  }

  /** At least `bytes` more WAL (whole records, one transaction at most past it), with what came before it untaken. */
  generate(bytes: number): Buffer {
    const until = this.writer.endLsn + bytes
    this.commitTime = pgNowUs()
    while (this.writer.endLsn < until) this.next()
    return this.writer.take()
  }

  /**
   * What GetPage of block `blkno` returns at or after the end of the WAL taken: the page of its latest
   * image with pd_lsn set to that record's end (pd_checksum as the cluster computes it is left zero); null
   * for a block no image reached.
   */
  expectedPage(blkno: number): Buffer | null {
    const n = this.relationBlocks
    const versions = Math.floor(this.images / n) + (blkno < this.images % n ? 1 : 0)
    if (versions === 0) return null
    const page = syntheticHeapPage(blkno, versions - 1)
    setPageLsn(page, this.imageEnds[blkno])
    return page
  }

  private next(): void {
    switch (this.opts.mix) {
      case 'images':
        this.image(0)
        return
      case 'small':
        this.commit(this.takeXid())
        return
      case 'mixed': {
        const xid = this.takeXid()
        this.image(xid)
        this.commit(xid)
        return
      }
    }
  }

  /** The next xid as GetNewTransactionId hands it out: past the special ones, a new CLOG page zeroed first. */
  private takeXid(): number {
    let xid = this.nextXid % TWO_32
    if (xid < FirstNormalTransactionId) {
      this.nextXid += FirstNormalTransactionId - xid
      xid = FirstNormalTransactionId
    }
    this.nextXid++
    if (xid % CLOG_XACTS_PER_PAGE === 0 || xid === FirstNormalTransactionId) {
      this.append(0, RM_CLOG_ID, CLOG_ZEROPAGE, encodeClogZeroPage(transactionIdToClogPage(xid)))
    }
    return xid
  }

  private commit(xid: number): void {
    const rec = this.commitRecord
    rec.writeUInt32LE(xid, RECORD_HEADER_OFFSETS.xl_xid)
    rec.writeBigInt64LE(this.commitTime, rec.length - 8)
    this.writer.appendEncoded(rec)
    this.records++
    this.commits++
  }

  /** log_newpage of the next block in turn: its image without the hole, applied at redo. */
  private image(xid: number): void {
    const blkno = this.images % this.relationBlocks
    const version = Math.floor(this.images / this.relationBlocks)
    const { lower, upper } = syntheticHeapImage(blkno, version, this.scratch)
    this.writer.append({
      xid,
      rmid: RM_XLOG_ID,
      info: XLOG_FPI,
      mainData: Buffer.alloc(0),
      blocks: [
        {
          id: 0,
          forkNum: MAIN_FORKNUM,
          ...this.rel,
          blkno,
          willInit: false,
          image: {
            data: this.scratch.subarray(0, BLCKSZ - (upper - lower)),
            holeOffset: lower,
            holeLength: upper - lower,
            bimgInfo: BKPIMAGE_HAS_HOLE | BKPIMAGE_APPLY,
          },
          data: null,
        },
      ],
    })
    this.records++
    this.images++
    this.imageEnds[blkno] = this.writer.endLsn
  }

  private append(xid: number, rmid: number, info: number, mainData: Buffer): void {
    this.writer.append({ xid, rmid, info, mainData, blocks: [] })
    this.records++
  }
}
