/**
 * The progress of replication origins, as replorigin_redo and the commit and abort redo of a transaction
 * applied by an origin keep it (replorigin_advance): the remote LSN each origin has applied up to, which
 * only moves backwards when pg_replication_origin_advance forces it. A basebackup writes it as
 * pg_logical/replorigin_checkpoint.
 */

import { type Lsn, readLsn, writeLsn } from '../../postgres/lsn.js'
import {
  DoNotReplicateId,
  InvalidRepOriginId,
  parseReplOriginRecord,
} from '../../postgres/records/replorigin.js'
import type { DecodedRecord } from '../../postgres/xlog-record.js'
import { decodeU32Set, encodeU32Set, REPLORIGIN_DIR_KEY, replOriginKey } from '../datadir-mapping.js'
import type { IngestState } from './state.js'

export function applyReplOrigin(s: IngestState, rec: DecodedRecord): void {
  const r = parseReplOriginRecord(rec.info, rec.mainData)
  if (r.kind === 'set') {
    advanceReplOrigin(s, r.nodeId, r.remoteLsn, r.force)
    return
  }
  const origins = listed(s)
  if (origins.delete(r.nodeId)) s.put(REPLORIGIN_DIR_KEY, encodeU32Set(origins))
}

function listed(s: IngestState): Set<number> {
  const dir = s.read(REPLORIGIN_DIR_KEY)
  return new Set(dir ? decodeU32Set(dir, 'replication origin directory') : [])
}

/** replorigin_advance: an origin seen for the first time starts at 0; progress moves back only when forced. */
export function advanceReplOrigin(
  s: IngestState,
  roident: number,
  remoteLsn: Lsn,
  goBackward: boolean,
): void {
  if (roident === InvalidRepOriginId || roident === DoNotReplicateId) return
  const origins = listed(s)
  if (origins.has(roident)) {
    const v = s.read(replOriginKey(roident))
    if (!goBackward && v && remoteLsn <= readLsn(v, 0)) return
  } else {
    origins.add(roident)
    s.put(REPLORIGIN_DIR_KEY, encodeU32Set(origins))
  }
  const value = Buffer.alloc(8)
  writeLsn(value, 0, remoteLsn)
  s.put(replOriginKey(roident), value)
}
