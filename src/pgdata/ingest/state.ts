/**
 * The datadir as WAL ingest changes it: reads of keys through the writes not yet committed, the writes
 * of the record being ingested (a key changed twice by one record is written once), relation sizes and
 * the directories, and the checkpoint and pg_control values it keeps current at every LSN. The rmgr
 * modules beside this one change the datadir through it; walingest.ts feeds it records and commits.
 */

import { keyStr } from '../../engine/key.js'
import type { Timeline, Write } from '../../engine/timeline.js'
import { type ErrorKind, ZenithError } from '../../lib/errors.js'
import { type CheckPoint, decodeCheckPoint, encodeCheckPoint } from '../../postgres/checkpoint.js'
import type { Lsn } from '../../postgres/lsn.js'
import { type ControlFile, decodeControlFile, encodeControlFile } from '../../postgres/pg-control.js'
import type { DecodedRecord } from '../../postgres/xlog-record.js'
import {
  CHECKPOINT_KEY,
  CONTROLFILE_KEY,
  DBDIR_KEY,
  type DbDirEntry,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  type RelTag,
  relDirKey,
  relSizeKey,
} from '../datadir-mapping.js'

export class IngestError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'IngestError'
}

const relCacheKey = (rel: RelTag) => `${rel.spcNode}/${rel.dbNode}/${rel.relNode}/${rel.forkNum}`

export class IngestState {
  private batch: Write[] = []
  private pending = new Map<string, Buffer>()
  private recordWrites = new Map<string, { key: Buffer; value: Buffer }>()
  /**
   * Relation sizes as this ingest last read or wrote them: every block image asks for one, and this
   * instance is the timeline's only writer, so they stay valid across commits.
   */
  private sizes = new Map<string, number | null>()
  private checkpoint: CheckPoint | null = null
  private checkpointDirty = false
  private control: ControlFile | null = null
  private controlDirty = false
  private lastEnd: Lsn = 0
  private lastStart: Lsn = 0

  constructor(
    readonly tl: Timeline,
    /** Pages get their checksum recomputed after a change. */
    readonly dataChecksums: boolean,
  ) {}

  /** Records ingested but not committed. */
  get pendingWrites(): number {
    return this.batch.length
  }

  read(key: Buffer): Buffer | null {
    const k = keyStr(key)
    return this.recordWrites.get(k)?.value ?? this.pending.get(k) ?? this.tl.get(key, this.tl.lastRecordLsn)
  }

  put(key: Buffer, value: Buffer): void {
    this.recordWrites.set(keyStr(key), { key, value })
  }

  /** Moves the record's writes, and the checkpoint and pg_control if it changed them, into the batch. */
  endRecord(rec: DecodedRecord): void {
    // A basebackup at any LSN needs the next xid, oid and multixact, and the settings, as of that LSN.
    if (this.checkpointDirty && this.checkpoint) {
      this.put(CHECKPOINT_KEY, encodeCheckPoint(this.checkpoint))
      this.checkpointDirty = false
    }
    if (this.controlDirty && this.control) {
      this.put(CONTROLFILE_KEY, encodeControlFile(this.control))
      this.controlDirty = false
    }
    for (const { key, value } of this.recordWrites.values()) {
      this.batch.push({ key, lsn: rec.endLsn, value: { kind: 'image', page: value } })
      this.pending.set(keyStr(key), value)
    }
    this.recordWrites.clear()
    this.lastEnd = rec.endLsn
    this.lastStart = rec.lsn
  }

  commit(): void {
    if (this.lastEnd <= this.tl.lastRecordLsn) return
    this.tl.ingest(this.batch, this.lastEnd, this.lastStart)
    this.batch = []
    this.pending.clear()
  }

  // --- checkpoint and pg_control -----------------------------------------------------------------------

  /** The checkpoint values as of the record being ingested; change them in place and call checkpointChanged. */
  checkPoint(): CheckPoint {
    if (!this.checkpoint) {
      const v = this.read(CHECKPOINT_KEY)
      if (!v)
        throw new IngestError(`timeline ${this.tl.timelineId} has no checkpoint: import a datadir first`)
      this.checkpoint = decodeCheckPoint(v)
    }
    return this.checkpoint
  }

  replaceCheckPoint(cp: CheckPoint): void {
    this.checkpoint = cp
    this.checkpointDirty = true
  }

  checkpointChanged(): void {
    this.checkpointDirty = true
  }

  /** pg_control as the record being ingested sees it; change it in place and call controlFileChanged. */
  controlFile(): ControlFile {
    if (!this.control) {
      const v = this.read(CONTROLFILE_KEY)
      if (!v)
        throw new IngestError(`timeline ${this.tl.timelineId} has no pg_control: import a datadir first`)
      this.control = decodeControlFile(v)
    }
    return this.control
  }

  controlFileChanged(): void {
    this.controlDirty = true
  }

  /** Moves nextXid past `xid`, as redo's AdvanceNextFullTransactionIdPastXid does. */
  trackXid(xid: number): void {
    if (xid === 0) return
    const cp = this.checkPoint()
    const epoch = Math.floor(cp.nextXid / 0x1_0000_0000)
    const next = cp.nextXid % 0x1_0000_0000
    // Xids compare modulo 2^32; a record's xid at or past nextXid moves it, wrapping into the next epoch.
    if (((xid - next) | 0) >= 0) {
      const nextXid = (xid + 1) % 0x1_0000_0000
      cp.nextXid = (nextXid < next ? epoch + 1 : epoch) * 0x1_0000_0000 + nextXid
      this.checkpointDirty = true
    }
  }

  // --- relations and databases -------------------------------------------------------------------------

  relSize(rel: RelTag): number | null {
    const k = relCacheKey(rel)
    let size = this.sizes.get(k)
    if (size === undefined) {
      const v = this.read(relSizeKey(rel))
      size = v ? decodeSize(v) : null
      this.sizes.set(k, size)
    }
    return size
  }

  setRelSize(rel: RelTag, nblocks: number): void {
    this.put(relSizeKey(rel), encodeSize(nblocks))
    this.sizes.set(relCacheKey(rel), nblocks)
  }

  addRel(rel: RelTag): void {
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

  dropRel(spcNode: number, dbNode: number, relNode: number): void {
    const dirKey = relDirKey(spcNode, dbNode)
    const cur = this.read(dirKey)
    if (!cur) return
    const entries = decodeRelDir(cur)
    const kept = entries.filter((e) => e.relNode !== relNode)
    if (kept.length !== entries.length) this.put(dirKey, encodeRelDir(kept))
  }

  dbs(): DbDirEntry[] {
    const v = this.read(DBDIR_KEY)
    return v ? decodeDbDir(v) : []
  }

  setDbs(dbs: readonly DbDirEntry[]): void {
    this.put(DBDIR_KEY, encodeDbDir(dbs))
  }

  addDb(db: DbDirEntry): void {
    const dbs = this.dbs().filter((d) => !(d.spcNode === db.spcNode && d.dbNode === db.dbNode))
    this.setDbs([...dbs, db])
  }
}
