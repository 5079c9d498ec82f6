/**
 * XLOG records that change what a basebackup hands a compute: the checkpoint values (next xid, oid and
 * multixact, the oldest ones) and the settings pg_control records. FPI records are block images; the
 * others change nothing that is stored (record-census.ts says why for each).
 */

import { parseXlogRecord } from '../../postgres/records/xlog.js'
import { multiXactIdPrecedes, transactionIdPrecedes } from '../../postgres/transaction-id.js'
import type { DecodedRecord } from '../../postgres/xlog-record.js'
import type { IngestState } from './state.js'
import { activateCommitTs, deactivateCommitTs } from './transactions.js'

export function applyXlog(s: IngestState, rec: DecodedRecord): void {
  const r = parseXlogRecord(rec.info, rec.mainData)
  switch (r.kind) {
    case 'checkpoint_shutdown':
    case 'checkpoint_online': {
      const cp = s.checkPoint()
      const c = r.checkPoint
      // An online checkpoint collects its values before its record is written, so the WAL in between may
      // have moved them on: never take one older than what the WAL already showed.
      const olderXid = transactionIdPrecedes(c.oldestXid, cp.oldestXid)
      const olderMulti = multiXactIdPrecedes(c.oldestMulti, cp.oldestMulti)
      s.replaceCheckPoint({
        ...c,
        nextXid: Math.max(c.nextXid, cp.nextXid),
        nextOid: Math.max(c.nextOid, cp.nextOid),
        nextMulti: Math.max(c.nextMulti, cp.nextMulti),
        nextMultiOffset: Math.max(c.nextMultiOffset, cp.nextMultiOffset),
        oldestXid: olderXid ? cp.oldestXid : c.oldestXid,
        oldestXidDb: olderXid ? cp.oldestXidDb : c.oldestXidDb,
        oldestMulti: olderMulti ? cp.oldestMulti : c.oldestMulti,
        oldestMultiDb: olderMulti ? cp.oldestMultiDb : c.oldestMultiDb,
        // Redo never reads these from a checkpoint record: commits, PARAMETER_CHANGE and truncation move them.
        oldestCommitTsXid: cp.oldestCommitTsXid,
        newestCommitTsXid: cp.newestCommitTsXid,
      })
      return
    }
    case 'nextoid':
      s.checkPoint().nextOid = r.nextOid
      s.checkpointChanged()
      return
    case 'parameter_change': {
      // xlog_redo's copy into pg_control, and CommitTsParameterChange.
      const cf = s.controlFile()
      const wasTracking = cf.trackCommitTimestamp
      cf.maxConnections = r.maxConnections
      cf.maxWorkerProcesses = r.maxWorkerProcesses
      cf.maxWalSenders = r.maxWalSenders
      cf.maxPreparedXacts = r.maxPreparedXacts
      cf.maxLocksPerXact = r.maxLocksPerXact
      cf.walLevel = r.walLevel
      cf.walLogHints = r.walLogHints
      cf.trackCommitTimestamp = r.trackCommitTimestamp
      s.controlFileChanged()
      if (r.trackCommitTimestamp && !wasTracking) activateCommitTs(s)
      else if (!r.trackCommitTimestamp && wasTracking) deactivateCommitTs(s)
      return
    }
    default:
      return
  }
}
