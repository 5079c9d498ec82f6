/**
 * Transaction outcomes, as Postgres' redo records them (xact_redo_commit / xact_redo_abort, clog_redo,
 * commit_ts_redo): the status bits in pg_xact, the commit timestamps in pg_commit_ts, two-phase state
 * files, the relations a commit or abort unlinks, and the progress of the replication origin that
 * applied it.
 *
 * Commit timestamps are kept while the timeline's pg_control says track_commit_timestamp is on — the
 * value of the imported control file, then of each PARAMETER_CHANGE — which is when Postgres' commit_ts
 * module is active during recovery.
 */

import { crc32c } from '../../postgres/crc32c.js'
import { parseClogRecord, parseCommitTsRecord } from '../../postgres/records/clog.js'
import { parseXactRecord, XACT_XINFO_HAS_ORIGIN } from '../../postgres/records/xact.js'
import {
  clogPagePrecedes,
  commitTsPagePrecedes,
  setClogStatus,
  TRANSACTION_STATUS_ABORTED,
  TRANSACTION_STATUS_COMMITTED,
  transactionIdToClogPage,
  transactionIdToCommitTsPage,
  writeCommitTsEntry,
} from '../../postgres/slru.js'
import { InvalidTransactionId, transactionIdPrecedes } from '../../postgres/transaction-id.js'
import type { DecodedRecord } from '../../postgres/xlog-record.js'
import {
  decodeU32Set,
  encodeU32Set,
  SlruKind,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from '../datadir-mapping.js'
import { advanceReplOrigin } from './replication-origins.js'
import { removeSlruSegments, slruPageExists, truncateSlru, updateSlruPage, zeroSlruPage } from './slru.js'
import type { IngestState } from './state.js'

export function applyXact(s: IngestState, rec: DecodedRecord): void {
  const r = parseXactRecord(rec.info, rec.mainData, rec.xid)
  if (r.kind === 'assignment' || r.kind === 'invalidations') return
  if (r.kind === 'prepare') {
    const file = Buffer.concat([r.stateData, Buffer.alloc(4)])
    file.writeUInt32LE(crc32c(r.stateData), r.stateData.length)
    s.put(twoPhaseFileKey(r.xid), file)
    setTwoPhase(s, r.xid, true)
    return
  }
  const committed = r.kind === 'commit' || r.kind === 'commit_prepared'
  const xids = [r.xid, ...r.subxacts]
  for (const xid of xids) {
    updateSlruPage(s, SlruKind.Clog, transactionIdToClogPage(xid), (page) =>
      setClogStatus(page, xid, committed ? TRANSACTION_STATUS_COMMITTED : TRANSACTION_STATUS_ABORTED),
    )
  }
  const fromOrigin = (r.xinfo & XACT_XINFO_HAS_ORIGIN) !== 0
  if (committed && s.controlFile().trackCommitTimestamp) {
    // A transaction applied by a replication origin keeps the origin's commit time.
    setCommitTs(s, r.xid, r.subxacts, fromOrigin ? (r.originTimestamp ?? 0) : r.xactTime, rec.origin)
  }
  if (fromOrigin) advanceReplOrigin(s, rec.origin, r.originLsn ?? 0, false)
  for (const x of r.subxacts) s.trackXid(x)
  for (const rn of r.relfilenodes) s.dropRel(rn.spcNode, rn.dbNode, rn.relNode)
  if (r.kind === 'commit_prepared' || r.kind === 'abort_prepared') setTwoPhase(s, r.xid, false)
}

/** TransactionTreeSetCommitTsData: every xid of the tree gets the time and origin; newestCommitTsXid moves. */
function setCommitTs(s: IngestState, xid: number, subxacts: number[], time: number, nodeId: number): void {
  for (const x of [xid, ...subxacts]) {
    updateSlruPage(s, SlruKind.CommitTs, transactionIdToCommitTsPage(x), (page) =>
      writeCommitTsEntry(page, x, { time, nodeId }),
    )
  }
  // Postgres takes the last subtransaction listed as the newest, whether or not it is the highest.
  const newest = subxacts.length > 0 ? subxacts[subxacts.length - 1] : xid
  const cp = s.checkPoint()
  if (transactionIdPrecedes(cp.newestCommitTsXid, newest)) {
    cp.newestCommitTsXid = newest
    s.checkpointChanged()
  }
}

function setTwoPhase(s: IngestState, xid: number, present: boolean): void {
  const cur = s.read(TWOPHASE_DIR_KEY)
  const xids = new Set(cur ? decodeU32Set(cur, 'two-phase directory') : [])
  if (present) xids.add(xid)
  else xids.delete(xid)
  s.put(TWOPHASE_DIR_KEY, encodeU32Set(xids))
}

export function applyClog(s: IngestState, rec: DecodedRecord): void {
  const r = parseClogRecord(rec.info, rec.mainData)
  if (r.kind === 'zeropage') {
    zeroSlruPage(s, SlruKind.Clog, r.pageno)
    return
  }
  truncateSlru(s, SlruKind.Clog, clogPagePrecedes, r.pageno)
  // Vacuum logs the truncation and then moves oldestXid to the same xid; a compute started here must not
  // look up the status of xids whose segments are gone.
  const cp = s.checkPoint()
  if (transactionIdPrecedes(cp.oldestXid, r.oldestXact)) {
    cp.oldestXid = r.oldestXact
    cp.oldestXidDb = r.oldestXactDb
    s.checkpointChanged()
  }
}

export function applyCommitTs(s: IngestState, rec: DecodedRecord): void {
  const r = parseCommitTsRecord(rec.info, rec.mainData)
  if (r.kind === 'zeropage') {
    zeroSlruPage(s, SlruKind.CommitTs, r.pageno)
    return
  }
  // AdvanceOldestCommitTsXid, then SimpleLruTruncate.
  const cp = s.checkPoint()
  if (
    cp.oldestCommitTsXid !== InvalidTransactionId &&
    transactionIdPrecedes(cp.oldestCommitTsXid, r.oldestXid)
  ) {
    cp.oldestCommitTsXid = r.oldestXid
    s.checkpointChanged()
  }
  truncateSlru(s, SlruKind.CommitTs, commitTsPagePrecedes, r.pageno)
}

/**
 * ActivateCommitTs, as redo runs it when a PARAMETER_CHANGE turns track_commit_timestamp on: timestamps
 * are valid from nextXid on, and the page of nextXid exists. The compute does the same at its start
 * without logging it, so its first page never arrives as a ZEROPAGE record.
 */
export function activateCommitTs(s: IngestState): void {
  const cp = s.checkPoint()
  const next = cp.nextXid % 0x1_0000_0000
  if (cp.oldestCommitTsXid === InvalidTransactionId) {
    cp.oldestCommitTsXid = next
    cp.newestCommitTsXid = next
    s.checkpointChanged()
  }
  const pageno = transactionIdToCommitTsPage(next)
  if (!slruPageExists(s, SlruKind.CommitTs, pageno)) zeroSlruPage(s, SlruKind.CommitTs, pageno)
}

/** DeactivateCommitTs: no timestamps are valid any more, and every pg_commit_ts segment goes. */
export function deactivateCommitTs(s: IngestState): void {
  const cp = s.checkPoint()
  cp.oldestCommitTsXid = InvalidTransactionId
  cp.newestCommitTsXid = InvalidTransactionId
  s.checkpointChanged()
  removeSlruSegments(s, SlruKind.CommitTs, () => true)
}
