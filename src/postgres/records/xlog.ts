/**
 * XLOG resource manager records that change cluster-wide state the pageserver reports in pg_control:
 * checkpoints, OID counter, server parameters, timeline switches. Records with no main data (NOOP, SWITCH,
 * FPI, FPI_FOR_HINT) are reported by kind only.
 */
import { type CheckPoint, decodeCheckPoint, SIZEOF_CHECKPOINT } from '../checkpoint.js'
import { type Lsn, LsnError } from '../lsn.js'
import {
  XLOG_BACKUP_END,
  XLOG_CHECKPOINT_ONLINE,
  XLOG_CHECKPOINT_SHUTDOWN,
  XLOG_END_OF_RECOVERY,
  XLOG_FPI,
  XLOG_FPI_FOR_HINT,
  XLOG_FPW_CHANGE,
  XLOG_NEXTOID,
  XLOG_NOOP,
  XLOG_OVERWRITE_CONTRECORD,
  XLOG_PARAMETER_CHANGE,
  XLOG_RESTORE_POINT,
  XLOG_SWITCH,
  XLR_RMGR_INFO_MASK,
} from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

/** MAXFNAMELEN: the fixed size of xl_restore_point.rp_name. */
const RESTORE_POINT_NAME_LEN = 64

export interface ParameterChange {
  kind: 'parameter_change'
  maxConnections: number
  maxWorkerProcesses: number
  maxWalSenders: number
  maxPreparedXacts: number
  maxLocksPerXact: number
  /** 0 minimal, 1 replica, 2 logical. */
  walLevel: number
  walLogHints: boolean
  trackCommitTimestamp: boolean
}

/** Timestamps are TimestampTz: microseconds since 2000-01-01 00:00:00 UTC. */
export type XlogRecord =
  | { kind: 'checkpoint_shutdown' | 'checkpoint_online'; checkPoint: CheckPoint }
  | { kind: 'nextoid'; nextOid: number }
  | ParameterChange
  | { kind: 'end_of_recovery'; endTime: number; thisTimeLineId: number; prevTimeLineId: number }
  | { kind: 'backup_end'; startLsn: Lsn }
  | { kind: 'restore_point'; time: number; name: string }
  | { kind: 'fpw_change'; fullPageWrites: boolean }
  | { kind: 'overwrite_contrecord'; overwrittenLsn: Lsn; overwriteTime: number }
  | { kind: 'noop' | 'switch' | 'fpi' | 'fpi_for_hint' }

export function parseXlogRecord(info: number, data: Buffer): XlogRecord {
  const op = info & XLR_RMGR_INFO_MASK
  switch (op) {
    case XLOG_CHECKPOINT_SHUTDOWN:
    case XLOG_CHECKPOINT_ONLINE: {
      const kind = op === XLOG_CHECKPOINT_SHUTDOWN ? 'checkpoint_shutdown' : 'checkpoint_online'
      const r = new MainDataReader(`XLOG ${kind.toUpperCase()}`, data)
      const image = r.bytes(SIZEOF_CHECKPOINT, 'CheckPoint')
      try {
        return { kind, checkPoint: decodeCheckPoint(image) }
      } catch (err) {
        if (err instanceof LsnError) r.fail(err.message)
        throw err
      }
    }
    case XLOG_NEXTOID:
      return { kind: 'nextoid', nextOid: new MainDataReader('XLOG NEXTOID', data).u32('nextOid') }
    case XLOG_PARAMETER_CHANGE: {
      const r = new MainDataReader('XLOG PARAMETER_CHANGE', data)
      return {
        kind: 'parameter_change',
        maxConnections: r.i32('MaxConnections'),
        maxWorkerProcesses: r.i32('max_worker_processes'),
        maxWalSenders: r.i32('max_wal_senders'),
        maxPreparedXacts: r.i32('max_prepared_xacts'),
        maxLocksPerXact: r.i32('max_locks_per_xact'),
        walLevel: r.i32('wal_level'),
        walLogHints: r.bool('wal_log_hints'),
        trackCommitTimestamp: r.bool('track_commit_timestamp'),
      }
    }
    case XLOG_END_OF_RECOVERY: {
      const r = new MainDataReader('XLOG END_OF_RECOVERY', data)
      return {
        kind: 'end_of_recovery',
        endTime: r.i64('end_time'),
        thisTimeLineId: r.u32('ThisTimeLineID'),
        prevTimeLineId: r.u32('PrevTimeLineID'),
      }
    }
    case XLOG_BACKUP_END:
      return { kind: 'backup_end', startLsn: new MainDataReader('XLOG BACKUP_END', data).lsn('startpoint') }
    case XLOG_RESTORE_POINT: {
      const r = new MainDataReader('XLOG RESTORE_POINT', data)
      const time = r.i64('rp_time')
      const raw = r.bytes(RESTORE_POINT_NAME_LEN, 'rp_name')
      const nul = raw.indexOf(0)
      if (nul < 0) r.fail(`rp_name has no terminating NUL within ${RESTORE_POINT_NAME_LEN} bytes`)
      return { kind: 'restore_point', time, name: raw.toString('utf8', 0, nul) }
    }
    case XLOG_FPW_CHANGE:
      return { kind: 'fpw_change', fullPageWrites: new MainDataReader('XLOG FPW_CHANGE', data).bool('fpw') }
    case XLOG_OVERWRITE_CONTRECORD: {
      const r = new MainDataReader('XLOG OVERWRITE_CONTRECORD', data)
      return {
        kind: 'overwrite_contrecord',
        overwrittenLsn: r.lsn('overwritten_lsn'),
        overwriteTime: r.i64('overwrite_time'),
      }
    }
    case XLOG_NOOP:
      return { kind: 'noop' }
    case XLOG_SWITCH:
      return { kind: 'switch' }
    case XLOG_FPI:
      return { kind: 'fpi' }
    case XLOG_FPI_FOR_HINT:
      return { kind: 'fpi_for_hint' }
    default:
      throw unknownOpError('XLOG', info)
  }
}

/** XLOG NEXTOID's main data: the OID after the batch GetNewObjectId just took. */
export function encodeNextOid(nextOid: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(nextOid)
  return b
}
