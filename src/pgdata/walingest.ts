/**
 * WAL ingest: decoded Postgres records become values of a timeline at the record's end LSN.
 *
 * With `wal_consistency_checking = all` every block reference carries the page after the change, so a
 * block becomes that image with pd_lsn stamped. What no block reference covers is applied here natively:
 * transaction status bits in pg_xact, visibility-map bits cleared by heap changes, relation creation and
 * truncation, database creation and drop, relmap updates, multixacts, two-phase state, and the checkpoint
 * values (nextXid, nextOid, nextMulti) a basebackup needs. A record that changes storage in a way this
 * module does not understand is an error naming it: nothing is silently dropped.
 */

import { keyStr } from '../engine/key.js'
import type { Timeline, Write } from '../engine/timeline.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { pageAfterRecord } from '../postgres/block-image.js'
import { type CheckPoint, decodeCheckPoint, encodeCheckPoint } from '../postgres/checkpoint.js'
import { crc32c } from '../postgres/crc32c.js'
import { BLCKSZ } from '../postgres/data-page.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { setPageChecksum } from '../postgres/page-checksum.js'
import { parseClogRecord } from '../postgres/records/clog.js'
import { parseDbaseRecord } from '../postgres/records/dbase.js'
import { heapVmClears } from '../postgres/records/heap.js'
import { parseMultiXactRecord } from '../postgres/records/multixact.js'
import { parseRelMapRecord } from '../postgres/records/relmap.js'
import { parseSmgrRecord, SMGR_TRUNCATE_HEAP, SMGR_TRUNCATE_VM } from '../postgres/records/smgr.js'
import { parseTblspcRecord } from '../postgres/records/tblspc.js'
import { parseXactRecord } from '../postgres/records/xact.js'
import { parseXlogRecord } from '../postgres/records/xlog.js'
import { GLOBALTABLESPACE_OID } from '../postgres/relfile.js'
import {
  RM_BRIN_ID,
  RM_BTREE_ID,
  RM_CLOG_ID,
  RM_DBASE_ID,
  RM_GENERIC_ID,
  RM_GIN_ID,
  RM_GIST_ID,
  RM_HASH_ID,
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_LOGICALMSG_ID,
  RM_MULTIXACT_ID,
  RM_RELMAP_ID,
  RM_REPLORIGIN_ID,
  RM_SEQ_ID,
  RM_SMGR_ID,
  RM_SPGIST_ID,
  RM_STANDBY_ID,
  RM_TBLSPC_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  recordTypeName,
  rmgrName,
} from '../postgres/rmgr.js'
import { type DecodedRecord, MAIN_FORKNUM, VISIBILITYMAP_FORKNUM } from '../postgres/xlog-record.js'
import { controlFileOf } from './datadir-keyspace.js'
import {
  CHECKPOINT_KEY,
  DBDIR_KEY,
  type DbDirEntry,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  decodeU32Set,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  encodeU32Set,
  type RelTag,
  relBlockKey,
  relDirKey,
  relmapKey,
  relSizeKey,
  SLRU_PAGES_PER_SEGMENT,
  SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from './datadir-mapping.js'

/** Heap blocks one VM page covers: 2 bits each in the 8168 bytes after the page header. */
const HEAPBLOCKS_PER_VM_PAGE = 32672
const CLOG_XACTS_PER_PAGE = 32768
const TRANSACTION_STATUS_COMMITTED = 1
const TRANSACTION_STATUS_ABORTED = 2
const MULTIXACT_OFFSETS_PER_PAGE = 2048
const MULTIXACT_MEMBERS_PER_PAGE = 1636
const MULTIXACT_MEMBERGROUP_SIZE = 20

const relCacheKey = (rel: RelTag) => `${rel.spcNode}/${rel.dbNode}/${rel.relNode}/${rel.forkNum}`

export class IngestError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'IngestError'
}

/** Rmgrs whose every change to storage is carried by block images (under wal_consistency_checking=all). */
export const IMAGE_ONLY_RMGRS: ReadonlySet<number> = new Set([
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_BTREE_ID,
  RM_HASH_ID,
  RM_GIN_ID,
  RM_GIST_ID,
  RM_SEQ_ID,
  RM_SPGIST_ID,
  RM_BRIN_ID,
  RM_GENERIC_ID,
])
/** Rmgrs without storage effects the pageserver keeps. */
const NO_STORAGE_RMGRS = new Set([RM_STANDBY_ID, RM_LOGICALMSG_ID, RM_REPLORIGIN_ID])

export interface WalIngestOptions {
  /**
   * The cluster has data checksums: pages get their checksum recomputed after pd_lsn is stamped. By
   * default the timeline's pg_control says.
   */
  dataChecksums?: boolean
}

/**
 * Turns records into writes and commits them in batches. Reads of the state it changes (relation sizes,
 * directories, SLRU pages) see its own uncommitted writes first.
 */
export class WalIngest {
  private batch: Write[] = []
  private pending = new Map<string, Buffer>()
  /** This record's writes, by key: a record changing one key twice writes it once. */
  private recordWrites = new Map<string, { key: Buffer; value: Buffer }>()
  /**
   * Relation sizes as this ingest last read or wrote them: every block image asks for one, and this
   * instance is the timeline's only writer, so they stay valid across commits.
   */
  private sizes = new Map<string, number | null>()
  private checkpoint: CheckPoint | null = null
  private checkpointDirty = false
  private lastEnd: Lsn = 0
  private lastStart: Lsn = 0

  private readonly dataChecksums: boolean

  constructor(
    private readonly tl: Timeline,
    opts: WalIngestOptions = {},
  ) {
    const control = controlFileOf((key) => tl.get(key, tl.lastRecordLsn))
    this.dataChecksums = opts.dataChecksums ?? (control !== null && control.dataChecksumVersion !== 0)
  }

  /** Records ingested but not committed. */
  get pendingWrites(): number {
    return this.batch.length
  }

  ingest(rec: DecodedRecord): void {
    if (rec.endLsn <= this.tl.lastRecordLsn) return
    this.applyBlocks(rec)
    this.applyNative(rec)
    this.trackXid(rec.xid)
    // A basebackup at any LSN needs the next xid, oid and multixact as of that LSN.
    if (this.checkpointDirty && this.checkpoint) {
      this.put(CHECKPOINT_KEY, encodeCheckPoint(this.checkpoint))
      this.checkpointDirty = false
    }
    for (const { key, value } of this.recordWrites.values()) {
      this.batch.push({ key, lsn: rec.endLsn, value: { kind: 'image', page: value } })
      this.pending.set(keyStr(key), value)
    }
    this.recordWrites.clear()
    this.lastEnd = rec.endLsn
    this.lastStart = rec.lsn
  }

  /** Makes everything ingested visible at the last record's end LSN. */
  commit(): void {
    if (this.lastEnd <= this.tl.lastRecordLsn) return
    this.tl.ingest(this.batch, this.lastEnd, this.lastStart)
    this.batch = []
    this.pending.clear()
  }

  // --- state reads through uncommitted writes ----------------------------------------------------------

  private read(key: Buffer): Buffer | null {
    const k = keyStr(key)
    return this.recordWrites.get(k)?.value ?? this.pending.get(k) ?? this.tl.get(key, this.tl.lastRecordLsn)
  }

  private put(key: Buffer, value: Buffer): void {
    this.recordWrites.set(keyStr(key), { key, value })
  }

  private relSize(rel: RelTag): number | null {
    const k = relCacheKey(rel)
    let size = this.sizes.get(k)
    if (size === undefined) {
      const v = this.read(relSizeKey(rel))
      size = v ? decodeSize(v) : null
      this.sizes.set(k, size)
    }
    return size
  }

  private setRelSize(rel: RelTag, nblocks: number): void {
    this.put(relSizeKey(rel), encodeSize(nblocks))
    this.sizes.set(relCacheKey(rel), nblocks)
  }

  private addRel(rel: RelTag): void {
    const dirKey = relDirKey(rel.spcNode, rel.dbNode)
    const cur = this.read(dirKey)
    const entries = cur ? decodeRelDir(cur) : []
    if (!entries.some((e) => e.relNode === rel.relNode && e.forkNum === rel.forkNum)) {
      entries.push({ relNode: rel.relNode, forkNum: rel.forkNum })
      this.put(dirKey, encodeRelDir(entries))
    }
    if (this.relSize(rel) === null) this.setRelSize(rel, 0)
    if (!cur) this.addDb({ spcNode: rel.spcNode, dbNode: rel.dbNode, hasRelmap: false })
  }

  private dropRel(spcNode: number, dbNode: number, relNode: number): void {
    const dirKey = relDirKey(spcNode, dbNode)
    const cur = this.read(dirKey)
    if (!cur) return
    const entries = decodeRelDir(cur)
    const kept = entries.filter((e) => e.relNode !== relNode)
    if (kept.length !== entries.length) this.put(dirKey, encodeRelDir(kept))
  }

  private dbs(): DbDirEntry[] {
    const v = this.read(DBDIR_KEY)
    return v ? decodeDbDir(v) : []
  }

  private addDb(db: DbDirEntry): void {
    const dbs = this.dbs().filter((d) => !(d.spcNode === db.spcNode && d.dbNode === db.dbNode))
    this.put(DBDIR_KEY, encodeDbDir([...dbs, db]))
  }

  private cp(): CheckPoint {
    if (!this.checkpoint) {
      const v = this.read(CHECKPOINT_KEY)
      if (!v)
        throw new IngestError(`timeline ${this.tl.timelineId} has no checkpoint: import a datadir first`)
      this.checkpoint = decodeCheckPoint(v)
    }
    return this.checkpoint
  }

  private trackXid(xid: number): void {
    if (xid === 0) return
    const cp = this.cp()
    const epoch = Math.floor(cp.nextXid / 0x1_0000_0000)
    const next = cp.nextXid % 0x1_0000_0000
    // Xids compare modulo 2^32; a record's xid at or past nextXid moves it, wrapping into the next epoch.
    if (((xid - next) | 0) >= 0) {
      const nextXid = (xid + 1) % 0x1_0000_0000
      cp.nextXid = (nextXid < next ? epoch + 1 : epoch) * 0x1_0000_0000 + nextXid
      this.checkpointDirty = true
    }
  }

  // --- blocks ------------------------------------------------------------------------------------------

  private applyBlocks(rec: DecodedRecord): void {
    for (const b of rec.blocks) {
      if (!b.image) {
        throw new IngestError(
          `record at ${formatLsn(rec.lsn)} (${rmgrName(rec.rmid)}/${recordTypeName(rec.rmid, rec.info)}) has block ` +
            `reference ${b.id} without a page image: the compute must run with wal_consistency_checking = all`,
        )
      }
      const rel = { spcNode: b.spcNode, dbNode: b.dbNode, relNode: b.relNode, forkNum: b.forkNum }
      const page = pageAfterRecord(rec, b)
      if (this.dataChecksums) setPageChecksum(page, b.blkno)
      this.put(relBlockKey(rel, b.blkno), page)
      const size = this.relSize(rel)
      if (size === null) this.addRel(rel)
      if (size === null || b.blkno >= size) this.setRelSize(rel, b.blkno + 1)
    }
  }

  // --- native records ----------------------------------------------------------------------------------

  private applyNative(rec: DecodedRecord): void {
    const { rmid, info, mainData } = rec
    if (rmid === RM_HEAP_ID || rmid === RM_HEAP2_ID) this.clearVmBits(rec)
    if (IMAGE_ONLY_RMGRS.has(rmid) || NO_STORAGE_RMGRS.has(rmid)) return
    switch (rmid) {
      case RM_XLOG_ID:
        this.applyXlog(rec)
        return
      case RM_XACT_ID:
        this.applyXact(rec)
        return
      case RM_CLOG_ID: {
        const r = parseClogRecord(info, mainData)
        if (r.kind === 'zeropage') this.zeroSlruPage(SlruKind.Clog, r.pageno)
        return
      }
      case RM_SMGR_ID:
        this.applySmgr(rec)
        return
      case RM_DBASE_ID:
        this.applyDbase(rec)
        return
      case RM_RELMAP_ID: {
        const r = parseRelMapRecord(info, mainData)
        const spc = r.dbId === 0 ? GLOBALTABLESPACE_OID : r.tsId
        this.put(relmapKey(spc, r.dbId), Buffer.from(r.data))
        if (r.dbId !== 0) this.addDb({ spcNode: spc, dbNode: r.dbId, hasRelmap: true })
        return
      }
      case RM_TBLSPC_ID:
        // A tablespace's relations and databases arrive as their own records; the directory itself is
        // the compute's business (a basebackup creates it in place).
        parseTblspcRecord(info, mainData)
        return
      case RM_MULTIXACT_ID:
        this.applyMultiXact(rec)
        return
      default:
        throw new IngestError(
          `record at ${formatLsn(rec.lsn)} (${rmgrName(rmid)}/${recordTypeName(rmid, info)}) changes storage in a way zenith does not apply`,
        )
    }
  }

  private clearVmBits(rec: DecodedRecord): void {
    const clears = heapVmClears(rec.rmid, rec.info, rec.mainData)
    if (!clears) return
    const block0 = rec.blocks.find((b) => b.id === 0)
    const block1 = rec.blocks.find((b) => b.id === 1)
    if (block0 && clears.block0) this.clearVm(block0, clears.block0)
    if (clears.oldPage) {
      const old = block1 ?? block0
      if (old) this.clearVm(old, clears.oldPage)
    }
  }

  private clearVm(
    heap: { spcNode: number; dbNode: number; relNode: number; blkno: number },
    bits: number,
  ): void {
    const vm = {
      spcNode: heap.spcNode,
      dbNode: heap.dbNode,
      relNode: heap.relNode,
      forkNum: VISIBILITYMAP_FORKNUM,
    }
    const vmBlock = Math.floor(heap.blkno / HEAPBLOCKS_PER_VM_PAGE)
    const size = this.relSize(vm)
    if (size === null || vmBlock >= size) return
    const cur = this.read(relBlockKey(vm, vmBlock))
    if (!cur) return
    const within = heap.blkno % HEAPBLOCKS_PER_VM_PAGE
    const byte = 24 + Math.floor(within / 4)
    const mask = bits << ((within % 4) * 2)
    if ((cur[byte] & mask) === 0) return
    const page = Buffer.from(cur)
    page[byte] &= ~mask
    if (this.dataChecksums) setPageChecksum(page, vmBlock)
    this.put(relBlockKey(vm, vmBlock), page)
  }

  private applyXlog(rec: DecodedRecord): void {
    const r = parseXlogRecord(rec.info, rec.mainData)
    switch (r.kind) {
      case 'checkpoint_shutdown':
      case 'checkpoint_online': {
        const cp = this.cp()
        const c = r.checkPoint
        // The record's values, but never a next-value older than what the WAL already showed.
        this.checkpoint = {
          ...c,
          nextXid: Math.max(c.nextXid, cp.nextXid),
          nextOid: Math.max(c.nextOid, cp.nextOid),
          nextMulti: Math.max(c.nextMulti, cp.nextMulti),
          nextMultiOffset: Math.max(c.nextMultiOffset, cp.nextMultiOffset),
        }
        this.checkpointDirty = true
        return
      }
      case 'nextoid':
        this.cp().nextOid = r.nextOid
        this.checkpointDirty = true
        return
      default:
        // FPI records are all block images; the others do not change storage.
        return
    }
  }

  private applyXact(rec: DecodedRecord): void {
    const r = parseXactRecord(rec.info, rec.mainData, rec.xid)
    if (r.kind === 'assignment' || r.kind === 'invalidations') return
    if (r.kind === 'prepare') {
      const file = Buffer.concat([r.stateData, Buffer.alloc(4)])
      file.writeUInt32LE(crc32c(r.stateData), r.stateData.length)
      this.put(twoPhaseFileKey(r.xid), file)
      this.setTwoPhase(r.xid, true)
      return
    }
    const status =
      r.kind === 'commit' || r.kind === 'commit_prepared'
        ? TRANSACTION_STATUS_COMMITTED
        : TRANSACTION_STATUS_ABORTED
    this.setXidStatus([r.xid, ...r.subxacts], status)
    for (const x of r.subxacts) this.trackXid(x)
    for (const rn of r.relfilenodes) this.dropRel(rn.spcNode, rn.dbNode, rn.relNode)
    if (r.kind === 'commit_prepared' || r.kind === 'abort_prepared') this.setTwoPhase(r.xid, false)
  }

  private setTwoPhase(xid: number, present: boolean): void {
    const cur = this.read(TWOPHASE_DIR_KEY)
    const xids = new Set(cur ? decodeU32Set(cur, 'two-phase directory') : [])
    if (present) xids.add(xid)
    else xids.delete(xid)
    this.put(TWOPHASE_DIR_KEY, encodeU32Set(xids))
  }

  private setXidStatus(xids: number[], status: number): void {
    for (const xid of xids) {
      const pageno = Math.floor(xid / CLOG_XACTS_PER_PAGE)
      const key = slruBlockKey(
        SlruKind.Clog,
        Math.floor(pageno / SLRU_PAGES_PER_SEGMENT),
        pageno % SLRU_PAGES_PER_SEGMENT,
      )
      const cur = this.read(key)
      const page = cur ? Buffer.from(cur) : Buffer.alloc(BLCKSZ)
      if (!cur) this.extendSlru(SlruKind.Clog, pageno)
      const within = xid % CLOG_XACTS_PER_PAGE
      const byte = Math.floor(within / 4)
      const shift = (within % 4) * 2
      page[byte] = (page[byte] & ~(3 << shift)) | (status << shift)
      this.put(key, page)
    }
  }

  private zeroSlruPage(kind: SlruKind, pageno: number): void {
    const segno = Math.floor(pageno / SLRU_PAGES_PER_SEGMENT)
    this.put(slruBlockKey(kind, segno, pageno % SLRU_PAGES_PER_SEGMENT), Buffer.alloc(BLCKSZ))
    this.extendSlru(kind, pageno)
  }

  private extendSlru(kind: SlruKind, pageno: number): void {
    const segno = Math.floor(pageno / SLRU_PAGES_PER_SEGMENT)
    const blk = pageno % SLRU_PAGES_PER_SEGMENT
    const sizeKey = slruSegSizeKey(kind, segno)
    const cur = this.read(sizeKey)
    const size = cur ? decodeSize(cur) : 0
    if (blk >= size) {
      // Pages between the old end and this one exist as zeros, as Postgres' SLRU files would have them.
      for (let b = size; b < blk; b++) {
        if (!this.read(slruBlockKey(kind, segno, b)))
          this.put(slruBlockKey(kind, segno, b), Buffer.alloc(BLCKSZ))
      }
      this.put(sizeKey, encodeSize(blk + 1))
    }
    if (!cur) {
      const dir = this.read(slruDirKey(kind))
      const segs = new Set(dir ? decodeU32Set(dir, 'SLRU directory') : [])
      segs.add(segno)
      this.put(slruDirKey(kind), encodeU32Set(segs))
    }
  }

  private applySmgr(rec: DecodedRecord): void {
    const r = parseSmgrRecord(rec.info, rec.mainData)
    if (r.kind === 'create') {
      this.addRel({ ...r.rnode, forkNum: r.forkNum })
      return
    }
    if (r.flags & SMGR_TRUNCATE_HEAP) {
      const main = { ...r.rnode, forkNum: MAIN_FORKNUM }
      const size = this.relSize(main)
      if (size !== null && r.blkno < size) this.setRelSize(main, r.blkno)
    }
    if (r.flags & SMGR_TRUNCATE_VM) {
      const vm = { ...r.rnode, forkNum: VISIBILITYMAP_FORKNUM }
      const size = this.relSize(vm)
      if (size !== null) {
        const keep = Math.ceil(r.blkno / HEAPBLOCKS_PER_VM_PAGE)
        if (keep < size) this.setRelSize(vm, keep)
        // Bits of heap blocks past the new end, in the last VM page kept, are cleared too.
        const last = Math.floor(r.blkno / HEAPBLOCKS_PER_VM_PAGE)
        const within = r.blkno % HEAPBLOCKS_PER_VM_PAGE
        if (within > 0 && last < size) {
          const cur = this.read(relBlockKey(vm, last))
          if (cur) {
            const page = Buffer.from(cur)
            const byte = 24 + Math.floor(within / 4)
            const keepBits = (within % 4) * 2
            page[byte] &= (1 << keepBits) - 1
            page.fill(0, byte + 1)
            if (this.dataChecksums) setPageChecksum(page, last)
            this.put(relBlockKey(vm, last), page)
          }
        }
      }
    }
  }

  private applyDbase(rec: DecodedRecord): void {
    const r = parseDbaseRecord(rec.info, rec.mainData)
    if (r.kind === 'create_wal_log') {
      this.addDb({ spcNode: r.tablespaceId, dbNode: r.dbId, hasRelmap: true })
      if (!this.read(relDirKey(r.tablespaceId, r.dbId)))
        this.put(relDirKey(r.tablespaceId, r.dbId), encodeRelDir([]))
      return
    }
    if (r.kind === 'create_file_copy') {
      const src = this.read(relDirKey(r.srcTablespaceId, r.srcDbId))
      if (!src)
        throw new IngestError(
          `CREATE DATABASE at ${formatLsn(rec.lsn)} copies database ${r.srcDbId}, which does not exist`,
        )
      const entries = decodeRelDir(src)
      for (const e of entries) {
        const from = { spcNode: r.srcTablespaceId, dbNode: r.srcDbId, relNode: e.relNode, forkNum: e.forkNum }
        const to = { spcNode: r.tablespaceId, dbNode: r.dbId, relNode: e.relNode, forkNum: e.forkNum }
        const n = this.relSize(from) ?? 0
        for (let b = 0; b < n; b++) {
          const page = this.read(relBlockKey(from, b))
          if (page) this.put(relBlockKey(to, b), page)
        }
        this.setRelSize(to, n)
      }
      this.put(relDirKey(r.tablespaceId, r.dbId), encodeRelDir(entries))
      const relmap = this.read(relmapKey(r.srcTablespaceId, r.srcDbId))
      if (relmap) this.put(relmapKey(r.tablespaceId, r.dbId), relmap)
      this.addDb({ spcNode: r.tablespaceId, dbNode: r.dbId, hasRelmap: true })
      return
    }
    const dropped = new Set(r.tablespaceIds.map((ts) => `${ts}/${r.dbId}`))
    this.put(DBDIR_KEY, encodeDbDir(this.dbs().filter((d) => !dropped.has(`${d.spcNode}/${d.dbNode}`))))
  }

  private applyMultiXact(rec: DecodedRecord): void {
    const r = parseMultiXactRecord(rec.info, rec.mainData)
    switch (r.kind) {
      case 'zero_off_page':
        this.zeroSlruPage(SlruKind.MultiXactOffsets, r.pageno)
        return
      case 'zero_mem_page':
        this.zeroSlruPage(SlruKind.MultiXactMembers, r.pageno)
        return
      case 'create_id': {
        const offPage = Math.floor(r.mid / MULTIXACT_OFFSETS_PER_PAGE)
        this.updateSlru(SlruKind.MultiXactOffsets, offPage, (p) =>
          p.writeUInt32LE(r.moff, (r.mid % MULTIXACT_OFFSETS_PER_PAGE) * 4),
        )
        for (let i = 0; i < r.members.length; i++) {
          const m = r.members[i]
          const off = (r.moff + i) % 0x1_0000_0000
          const page = Math.floor(off / MULTIXACT_MEMBERS_PER_PAGE)
          const inPage = off % MULTIXACT_MEMBERS_PER_PAGE
          const group = Math.floor(inPage / 4) * MULTIXACT_MEMBERGROUP_SIZE
          const slot = inPage % 4
          this.updateSlru(SlruKind.MultiXactMembers, page, (p) => {
            p[group + slot] = m.status
            p.writeUInt32LE(m.xid, group + 4 + slot * 4)
          })
          this.trackXid(m.xid)
        }
        const cp = this.cp()
        cp.nextMulti = Math.max(cp.nextMulti, r.mid + 1)
        cp.nextMultiOffset = Math.max(cp.nextMultiOffset, r.moff + r.members.length)
        this.checkpointDirty = true
        return
      }
      default:
        return
    }
  }

  private updateSlru(kind: SlruKind, pageno: number, change: (page: Buffer) => void): void {
    const key = slruBlockKey(
      kind,
      Math.floor(pageno / SLRU_PAGES_PER_SEGMENT),
      pageno % SLRU_PAGES_PER_SEGMENT,
    )
    const cur = this.read(key)
    if (!cur) this.extendSlru(kind, pageno)
    const page = cur ? Buffer.from(cur) : Buffer.alloc(BLCKSZ)
    change(page)
    this.put(key, page)
  }
}
