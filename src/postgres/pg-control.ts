/**
 * pg_control (`global/pg_control`): PG15's ControlFileData, pg_control_version 1300.
 *
 * The file is 8192 bytes (PG_CONTROL_FILE_SIZE) so that a write can never be torn across sectors; only the
 * first 296 bytes (sizeof(ControlFileData)) carry data and the rest is zero. The CRC-32C covers everything
 * before the `crc` field. Offsets follow the x86-64 C layout, so the struct has alignment holes; Postgres
 * memsets the struct before filling it, so every hole and the tail are zero and a re-encoded file is
 * byte-identical to the one Postgres wrote.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { type CheckPoint, decodeCheckPoint, encodeCheckPoint } from './checkpoint.js'
import { crc32c } from './crc32c.js'
import { type Lsn, readLsn, writeLsn } from './lsn.js'

export const PG_CONTROL_VERSION = 1300
export const PG_CONTROL_FILE_SIZE = 8192
export const SIZEOF_CONTROL_FILE_DATA = 296
export const MOCK_AUTH_NONCE_LEN = 32
/** Postgres stores this double to detect a cluster written with an incompatible float format. */
export const FLOATFORMAT_VALUE = 1234567.0

/** Byte offsets of ControlFileData's fields (PG15, x86-64). */
const OFF = {
  system_identifier: 0,
  pg_control_version: 8,
  catalog_version_no: 12,
  state: 16,
  time: 24,
  checkPoint: 32,
  checkPointCopy: 40,
  unloggedLSN: 128,
  minRecoveryPoint: 136,
  minRecoveryPointTLI: 144,
  backupStartPoint: 152,
  backupEndPoint: 160,
  backupEndRequired: 168,
  wal_level: 172,
  wal_log_hints: 176,
  MaxConnections: 180,
  max_worker_processes: 184,
  max_wal_senders: 188,
  max_prepared_xacts: 192,
  max_locks_per_xact: 196,
  track_commit_timestamp: 200,
  maxAlign: 204,
  floatFormat: 208,
  blcksz: 216,
  relseg_size: 220,
  xlog_blcksz: 224,
  xlog_seg_size: 228,
  nameDataLen: 232,
  indexMaxKeys: 236,
  toast_max_chunk_size: 240,
  loblksize: 244,
  float8ByVal: 248,
  data_checksum_version: 252,
  mock_authentication_nonce: 256,
  crc: 288,
} as const

/** Postgres' DBState: what the cluster was doing when pg_control was last written. */
export enum DBState {
  DB_STARTUP = 0,
  DB_SHUTDOWNED = 1,
  DB_SHUTDOWNED_IN_RECOVERY = 2,
  DB_SHUTDOWNING = 3,
  DB_IN_CRASH_RECOVERY = 4,
  DB_IN_ARCHIVE_RECOVERY = 5,
  DB_IN_PRODUCTION = 6,
}

/** Postgres' WalLevel as stored in pg_control (the wal_level the server last ran with). */
export enum WalLevel {
  WAL_LEVEL_MINIMAL = 0,
  WAL_LEVEL_REPLICA = 1,
  WAL_LEVEL_LOGICAL = 2,
}

export interface ControlFile {
  /** A random 64-bit number chosen by initdb; WAL segment headers repeat it. */
  systemIdentifier: bigint
  pgControlVersion: number
  catalogVersionNo: number
  state: DBState
  /** Seconds since the Unix epoch of the last pg_control update. */
  time: number
  /** Start LSN of the latest checkpoint record. */
  checkPoint: Lsn
  /** A copy of that checkpoint record's payload. */
  checkPointCopy: CheckPoint
  /** Fake LSN counter handed out to unlogged relations' GiST pages. */
  unloggedLsn: Lsn
  minRecoveryPoint: Lsn
  minRecoveryPointTli: number
  backupStartPoint: Lsn
  backupEndPoint: Lsn
  backupEndRequired: boolean
  walLevel: WalLevel
  walLogHints: boolean
  maxConnections: number
  maxWorkerProcesses: number
  maxWalSenders: number
  maxPreparedXacts: number
  maxLocksPerXact: number
  trackCommitTimestamp: boolean
  maxAlign: number
  floatFormat: number
  blcksz: number
  relsegSize: number
  xlogBlcksz: number
  xlogSegSize: number
  nameDataLen: number
  indexMaxKeys: number
  toastMaxChunkSize: number
  loblksize: number
  float8ByVal: boolean
  /** 0 when data checksums are off, otherwise PG_DATA_CHECKSUM_VERSION (1). */
  dataChecksumVersion: number
  /** 32 random bytes used to fake SCRAM challenges for nonexistent roles. */
  mockAuthenticationNonce: Buffer
}

export class ControlFileFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ControlFileFormatError'
}

const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`

export function decodeControlFile(buf: Buffer): ControlFile {
  if (buf.length < SIZEOF_CONTROL_FILE_DATA) {
    throw new ControlFileFormatError(
      `pg_control is ${buf.length} bytes, expected at least ${SIZEOF_CONTROL_FILE_DATA} (sizeof ControlFileData)`,
    )
  }
  const u32 = (o: number) => buf.readUInt32LE(o)
  const bool = (o: number) => buf[o] !== 0
  // Checked before the CRC, as Postgres does: a different major version's file has a different CRC range.
  const version = u32(OFF.pg_control_version)
  if (version !== PG_CONTROL_VERSION) {
    throw new ControlFileFormatError(
      `pg_control_version at offset ${OFF.pg_control_version} is ${version}, expected ${PG_CONTROL_VERSION} (PostgreSQL 15)`,
    )
  }
  const stored = u32(OFF.crc)
  const computed = crc32c(buf.subarray(0, OFF.crc))
  if (stored !== computed) {
    throw new ControlFileFormatError(
      `pg_control CRC mismatch: stored at offset ${OFF.crc} is ${hex(stored)}, ` +
        `CRC-32C of bytes [0, ${OFF.crc}) is ${hex(computed)}`,
    )
  }
  return {
    systemIdentifier: buf.readBigUInt64LE(OFF.system_identifier),
    pgControlVersion: version,
    catalogVersionNo: u32(OFF.catalog_version_no),
    state: u32(OFF.state),
    time: Number(buf.readBigInt64LE(OFF.time)),
    checkPoint: readLsn(buf, OFF.checkPoint),
    checkPointCopy: decodeCheckPoint(buf, OFF.checkPointCopy),
    unloggedLsn: readLsn(buf, OFF.unloggedLSN),
    minRecoveryPoint: readLsn(buf, OFF.minRecoveryPoint),
    minRecoveryPointTli: u32(OFF.minRecoveryPointTLI),
    backupStartPoint: readLsn(buf, OFF.backupStartPoint),
    backupEndPoint: readLsn(buf, OFF.backupEndPoint),
    backupEndRequired: bool(OFF.backupEndRequired),
    walLevel: u32(OFF.wal_level),
    walLogHints: bool(OFF.wal_log_hints),
    maxConnections: u32(OFF.MaxConnections),
    maxWorkerProcesses: u32(OFF.max_worker_processes),
    maxWalSenders: u32(OFF.max_wal_senders),
    maxPreparedXacts: u32(OFF.max_prepared_xacts),
    maxLocksPerXact: u32(OFF.max_locks_per_xact),
    trackCommitTimestamp: bool(OFF.track_commit_timestamp),
    maxAlign: u32(OFF.maxAlign),
    floatFormat: buf.readDoubleLE(OFF.floatFormat),
    blcksz: u32(OFF.blcksz),
    relsegSize: u32(OFF.relseg_size),
    xlogBlcksz: u32(OFF.xlog_blcksz),
    xlogSegSize: u32(OFF.xlog_seg_size),
    nameDataLen: u32(OFF.nameDataLen),
    indexMaxKeys: u32(OFF.indexMaxKeys),
    toastMaxChunkSize: u32(OFF.toast_max_chunk_size),
    loblksize: u32(OFF.loblksize),
    float8ByVal: bool(OFF.float8ByVal),
    dataChecksumVersion: u32(OFF.data_checksum_version),
    mockAuthenticationNonce: Buffer.from(
      buf.subarray(OFF.mock_authentication_nonce, OFF.mock_authentication_nonce + MOCK_AUTH_NONCE_LEN),
    ),
  }
}

export function encodeControlFile(cf: ControlFile): Buffer {
  if (cf.mockAuthenticationNonce.length !== MOCK_AUTH_NONCE_LEN) {
    throw new ControlFileFormatError(
      `mock_authentication_nonce must be ${MOCK_AUTH_NONCE_LEN} bytes, got ${cf.mockAuthenticationNonce.length}`,
    )
  }
  const out = Buffer.alloc(PG_CONTROL_FILE_SIZE)
  const u32 = (o: number, v: number) => out.writeUInt32LE(v, o)
  const bool = (o: number, v: boolean) => {
    out[o] = v ? 1 : 0
  }
  out.writeBigUInt64LE(cf.systemIdentifier, OFF.system_identifier)
  u32(OFF.pg_control_version, cf.pgControlVersion)
  u32(OFF.catalog_version_no, cf.catalogVersionNo)
  u32(OFF.state, cf.state)
  out.writeBigInt64LE(BigInt(cf.time), OFF.time)
  writeLsn(out, OFF.checkPoint, cf.checkPoint)
  encodeCheckPoint(cf.checkPointCopy, out, OFF.checkPointCopy)
  writeLsn(out, OFF.unloggedLSN, cf.unloggedLsn)
  writeLsn(out, OFF.minRecoveryPoint, cf.minRecoveryPoint)
  u32(OFF.minRecoveryPointTLI, cf.minRecoveryPointTli)
  writeLsn(out, OFF.backupStartPoint, cf.backupStartPoint)
  writeLsn(out, OFF.backupEndPoint, cf.backupEndPoint)
  bool(OFF.backupEndRequired, cf.backupEndRequired)
  u32(OFF.wal_level, cf.walLevel)
  bool(OFF.wal_log_hints, cf.walLogHints)
  u32(OFF.MaxConnections, cf.maxConnections)
  u32(OFF.max_worker_processes, cf.maxWorkerProcesses)
  u32(OFF.max_wal_senders, cf.maxWalSenders)
  u32(OFF.max_prepared_xacts, cf.maxPreparedXacts)
  u32(OFF.max_locks_per_xact, cf.maxLocksPerXact)
  bool(OFF.track_commit_timestamp, cf.trackCommitTimestamp)
  u32(OFF.maxAlign, cf.maxAlign)
  out.writeDoubleLE(cf.floatFormat, OFF.floatFormat)
  u32(OFF.blcksz, cf.blcksz)
  u32(OFF.relseg_size, cf.relsegSize)
  u32(OFF.xlog_blcksz, cf.xlogBlcksz)
  u32(OFF.xlog_seg_size, cf.xlogSegSize)
  u32(OFF.nameDataLen, cf.nameDataLen)
  u32(OFF.indexMaxKeys, cf.indexMaxKeys)
  u32(OFF.toast_max_chunk_size, cf.toastMaxChunkSize)
  u32(OFF.loblksize, cf.loblksize)
  bool(OFF.float8ByVal, cf.float8ByVal)
  u32(OFF.data_checksum_version, cf.dataChecksumVersion)
  cf.mockAuthenticationNonce.copy(out, OFF.mock_authentication_nonce)
  u32(OFF.crc, crc32c(out.subarray(0, OFF.crc)))
  return out
}
