/**
 * pg_logical/replorigin_checkpoint: the progress of every replication origin, which Postgres writes at
 * each checkpoint and reads at start (origin.c, CheckPointReplicationOrigin / StartupReplicationOrigin).
 *
 *   off 0        size 4   magic REPLICATION_STATE_MAGIC 0x1257DADE
 *   off 4 + 16i  size 16  ReplicationStateOnDisk: off 0 size 2 roident, 6 zero pad bytes, off 8 size 8 remote_lsn
 *   end − 4      size 4   CRC-32C of everything before it
 *
 * All little-endian. Only origins with an id are written; the local LSN of their last commit is not.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { crc32c } from './crc32c.js'
import { type Lsn, LsnError, readLsn, writeLsn } from './lsn.js'

export const REPLICATION_STATE_MAGIC = 0x1257dade
const SIZEOF_REPLICATION_STATE_ON_DISK = 16

export interface ReplicationOriginProgress {
  /** RepOriginId, 1..65534. */
  roident: number
  remoteLsn: Lsn
}

export class ReplOriginCheckpointFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ReplOriginCheckpointFormatError'
}

export function encodeReplOriginCheckpoint(states: readonly ReplicationOriginProgress[]): Buffer {
  const out = Buffer.alloc(4 + states.length * SIZEOF_REPLICATION_STATE_ON_DISK + 4)
  out.writeUInt32LE(REPLICATION_STATE_MAGIC, 0)
  states.forEach((s, i) => {
    const at = 4 + i * SIZEOF_REPLICATION_STATE_ON_DISK
    out.writeUInt16LE(s.roident, at)
    writeLsn(out, at + 8, s.remoteLsn)
  })
  out.writeUInt32LE(crc32c(out.subarray(0, out.length - 4)), out.length - 4)
  return out
}

export function decodeReplOriginCheckpoint(buf: Buffer): ReplicationOriginProgress[] {
  const fail = (problem: string): never => {
    throw new ReplOriginCheckpointFormatError(`replorigin_checkpoint: ${problem}`)
  }
  if (buf.length < 8 || (buf.length - 8) % SIZEOF_REPLICATION_STATE_ON_DISK !== 0)
    fail(`${buf.length} bytes is not the magic, whole 16-byte states and a CRC`)
  const magic = buf.readUInt32LE(0)
  if (magic !== REPLICATION_STATE_MAGIC)
    fail(`magic 0x${magic.toString(16)} is not 0x${REPLICATION_STATE_MAGIC.toString(16)}`)
  const stored = buf.readUInt32LE(buf.length - 4)
  const computed = crc32c(buf.subarray(0, buf.length - 4))
  if (stored !== computed) fail(`CRC 0x${stored.toString(16)} stored, 0x${computed.toString(16)} computed`)
  const states: ReplicationOriginProgress[] = []
  for (let at = 4; at < buf.length - 4; at += SIZEOF_REPLICATION_STATE_ON_DISK) {
    try {
      states.push({ roident: buf.readUInt16LE(at), remoteLsn: readLsn(buf, at + 8) })
    } catch (err) {
      if (err instanceof LsnError) fail(`state at offset ${at}: ${err.message}`)
      throw err
    }
  }
  return states
}
