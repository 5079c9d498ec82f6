/**
 * WAL ingest: decoded Postgres records become values of a timeline at the record's end LSN.
 *
 * With `wal_consistency_checking = all` every block reference carries the page after the change, so a
 * block becomes that image with pd_lsn stamped. What no block reference covers is applied natively by
 * the modules of ingest/, one per group of rmgrs, as record-census.ts lists it for every record type. A
 * record the census does not know is an error naming it: nothing is silently dropped.
 */

import type { Timeline } from '../engine/timeline.js'
import { formatLsn } from '../postgres/lsn.js'
import {
  RM_CLOG_ID,
  RM_COMMIT_TS_ID,
  RM_DBASE_ID,
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_MULTIXACT_ID,
  RM_RELMAP_ID,
  RM_REPLORIGIN_ID,
  RM_SMGR_ID,
  RM_TBLSPC_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  recordTypeName,
  rmgrName,
} from '../postgres/rmgr.js'
import type { DecodedRecord } from '../postgres/xlog-record.js'
import { controlFileOf } from './datadir-keyspace.js'
import { applyMultiXact } from './ingest/multixact.js'
import {
  applyBlocks,
  applyDbase,
  applyRelMap,
  applySmgr,
  applyTblspc,
  clearVmBits,
} from './ingest/relations.js'
import { applyReplOrigin } from './ingest/replication-origins.js'
import { IngestError, IngestState } from './ingest/state.js'
import { applyClog, applyCommitTs, applyXact } from './ingest/transactions.js'
import { applyXlog } from './ingest/xlog.js'
import { censusOf } from './record-census.js'

export { IngestError }

type Applier = (s: IngestState, rec: DecodedRecord) => void

/** The native part of every record type the census marks `applied`, by rmgr. */
export const APPLIERS: Readonly<Record<number, Applier>> = {
  [RM_XLOG_ID]: applyXlog,
  [RM_XACT_ID]: applyXact,
  [RM_SMGR_ID]: applySmgr,
  [RM_CLOG_ID]: applyClog,
  [RM_DBASE_ID]: applyDbase,
  [RM_TBLSPC_ID]: applyTblspc,
  [RM_MULTIXACT_ID]: applyMultiXact,
  [RM_RELMAP_ID]: applyRelMap,
  [RM_HEAP2_ID]: clearVmBits,
  [RM_HEAP_ID]: clearVmBits,
  [RM_COMMIT_TS_ID]: applyCommitTs,
  [RM_REPLORIGIN_ID]: applyReplOrigin,
}

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
  private readonly state: IngestState

  constructor(
    private readonly tl: Timeline,
    opts: WalIngestOptions = {},
  ) {
    const control = controlFileOf((key) => tl.get(key, tl.lastRecordLsn))
    this.state = new IngestState(
      tl,
      opts.dataChecksums ?? (control !== null && control.dataChecksumVersion !== 0),
    )
  }

  /** Records ingested but not committed. */
  get pendingWrites(): number {
    return this.state.pendingWrites
  }

  ingest(rec: DecodedRecord): void {
    if (rec.endLsn <= this.tl.lastRecordLsn) return
    const entry = censusOf(rec.rmid, rec.info)
    if (!entry) {
      throw new IngestError(
        `record at ${formatLsn(rec.lsn)} (${rmgrName(rec.rmid)}/${recordTypeName(rec.rmid, rec.info)}) changes storage in a way zenith does not apply`,
      )
    }
    applyBlocks(this.state, rec)
    if (entry.effect === 'applied') APPLIERS[rec.rmid](this.state, rec)
    this.state.trackXid(rec.xid)
    this.state.endRecord(rec)
  }

  /** Makes everything ingested visible at the last record's end LSN. */
  commit(): void {
    this.state.commit()
  }
}
