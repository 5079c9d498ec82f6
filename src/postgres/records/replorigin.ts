/**
 * ReplicationOrigin records (replication/origin.h): the progress of a replication origin — the remote LSN
 * up to which its changes are applied — set by pg_replication_origin_advance or a subscription, and its
 * drop. Commits applied by an origin carry their progress themselves (XACT_XINFO_HAS_ORIGIN).
 *
 *   SET  0x00   off 0 size 8 remote_lsn, off 8 size 2 node_id (RepOriginId), off 10 size 1 force (bool)
 *   DROP 0x10   off 0 size 2 node_id
 */
import type { Lsn } from '../lsn.js'
import { XLR_RMGR_INFO_MASK } from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export const XLOG_REPLORIGIN_SET = 0x00
export const XLOG_REPLORIGIN_DROP = 0x10

/** RepOriginId 0: no origin, a local change. */
export const InvalidRepOriginId = 0
/** RepOriginId 0xFFFF: changes that are never replicated, and whose progress is not tracked. */
export const DoNotReplicateId = 0xffff

export type ReplOriginRecord =
  /** `force`: the progress may move backwards (pg_replication_origin_advance). */
  { kind: 'set'; remoteLsn: Lsn; nodeId: number; force: boolean } | { kind: 'drop'; nodeId: number }

export function parseReplOriginRecord(info: number, data: Buffer): ReplOriginRecord {
  const op = info & XLR_RMGR_INFO_MASK
  if (op === XLOG_REPLORIGIN_SET) {
    const r = new MainDataReader('REPLORIGIN SET', data)
    return { kind: 'set', remoteLsn: r.lsn('remote_lsn'), nodeId: r.u16('node_id'), force: r.bool('force') }
  }
  if (op === XLOG_REPLORIGIN_DROP) {
    return { kind: 'drop', nodeId: new MainDataReader('REPLORIGIN DROP', data).u16('node_id') }
  }
  throw unknownOpError('REPLORIGIN', info)
}
