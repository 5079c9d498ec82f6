/**
 * A safekeeper's control file (`safekeeper.control` in the timeline's directory): its vote, the terms
 * whose WAL it holds and the LSNs it has learnt, per tenant/timeline.
 *
 * A 16-byte header (magic, format version, payload length, CRC-32C of the payload) and a UTF-8 JSON
 * payload. JSON keeps the file readable with `tail -c +17`; the header makes a torn or damaged file fail
 * loudly instead of being half-trusted. LSNs are written as Postgres prints them ("0/16B3748") and the
 * 64-bit system id as a decimal string, since JSON numbers are doubles. The file is replaced with
 * temp + fsync + rename, so after a crash it is the old state or the new one.
 */
import { readFileSync } from 'node:fs'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { crc32c } from '../postgres/crc32c.js'
import { assertLsn, formatLsn, isValidSegmentSize, type Lsn, parseLsn } from '../postgres/lsn.js'

export const SK_CONTROL_FILE_NAME = 'safekeeper.control'
/** "ZSKC" read as a little-endian u32. */
export const SK_CONTROL_MAGIC = 0x5a534b43
export const SK_CONTROL_FORMAT_VERSION = 1

/** Byte offsets of the header fields and the payload. */
const OFF = {
  magic: 0,
  format_version: 4,
  payload_len: 8,
  payload_crc: 12,
  payload: 16,
} as const

export const SK_CONTROL_HEADER_SIZE = OFF.payload

/** Term `term` began at `lsn`. */
export interface TermEntry {
  term: number
  lsn: Lsn
}

export interface PageserverFeedback {
  lastReceivedLsn: Lsn
  diskConsistentLsn: Lsn
  remoteConsistentLsn: Lsn
  currentLogicalSize: number
  replyTimeUs: number
}

export interface SafekeeperState {
  tenantId: string
  timelineId: string
  /** Postgres' system identifier, a u64 in decimal. */
  systemId: string
  pgTimeline: number
  walSegSize: number
  /** The highest term this safekeeper has voted for (0: none). */
  term: number
  /** Terms whose WAL it holds, ascending in term and lsn. */
  termHistory: TermEntry[]
  /** Where the timeline's WAL begins. */
  timelineStartLsn: Lsn
  /** The first LSN held locally (segments below may be removed). */
  localStartLsn: Lsn
  /** The highest LSN known committed by a quorum; monotonic. */
  commitLsn: Lsn
  /** Below this every safekeeper of the term has the WAL. */
  truncateLsn: Lsn
  /** A record boundary at or below the flush LSN, where the end-of-WAL scan starts after a restart. */
  flushRecordLsn: Lsn
  remoteConsistentLsn: Lsn
  pageserverFeedback: PageserverFeedback | null
  /** The compute of the current term this safekeeper pulls from. */
  computeConnstr: string | null
}

export class ControlFileError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ControlFileError'
}

/**
 * The term of the last entry of the term history, 0 if it is empty: the term whose WAL this safekeeper
 * follows, which peers compare before they count or fetch each other's WAL.
 */
export function lastLogTerm(state: SafekeeperState): number {
  return state.termHistory.at(-1)?.term ?? 0
}

/**
 * The term of the WAL at the end of what this safekeeper holds — of the last history entry that starts at
 * or below its flush LSN (Neon's epoch), 0 if none does. It differs from lastLogTerm on a safekeeper that
 * took a new term's history and has not fetched the WAL up to that term's start yet: its WAL is still all
 * of the older term, and the next election must compare it as such.
 */
export function epochAt(history: readonly TermEntry[], flushLsn: number): number {
  let epoch = 0
  for (const e of history) if (e.lsn <= flushLsn) epoch = e.term
  return epoch
}

const LSN_FIELDS = [
  'timelineStartLsn',
  'localStartLsn',
  'commitLsn',
  'truncateLsn',
  'flushRecordLsn',
  'remoteConsistentLsn',
] as const
const FEEDBACK_LSN_FIELDS = ['lastReceivedLsn', 'diskConsistentLsn', 'remoteConsistentLsn'] as const
const U64_MAX = (1n << 64n) - 1n
const U32_MAX = 0xffff_ffff
const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`

export function encodeControlFile(state: SafekeeperState): Buffer {
  const fail = (msg: string) => new ControlFileError(`safekeeper state to write: ${msg}`, { kind: 'bug' })
  const lsn = (v: Lsn, field: string) => {
    try {
      return formatLsn(assertLsn(v, field))
    } catch (err) {
      throw fail((err as Error).message)
    }
  }
  const fb = state.pageserverFeedback
  // Built before the checks, so that an LSN out of range is reported as such rather than as disorder.
  const json = {
    tenantId: state.tenantId,
    timelineId: state.timelineId,
    systemId: state.systemId,
    pgTimeline: state.pgTimeline,
    walSegSize: state.walSegSize,
    term: state.term,
    termHistory: state.termHistory.map((e, i) => ({
      term: e.term,
      lsn: lsn(e.lsn, `termHistory[${i}].lsn`),
    })),
    ...Object.fromEntries(LSN_FIELDS.map((f) => [f, lsn(state[f], f)])),
    pageserverFeedback:
      fb === null
        ? null
        : {
            ...Object.fromEntries(FEEDBACK_LSN_FIELDS.map((f) => [f, lsn(fb[f], `pageserverFeedback.${f}`)])),
            currentLogicalSize: fb.currentLogicalSize,
            replyTimeUs: fb.replyTimeUs,
          },
    computeConnstr: state.computeConnstr,
  }
  checkState(state, fail)
  const payload = Buffer.from(JSON.stringify(json, null, 2))
  const out = Buffer.alloc(OFF.payload + payload.length)
  out.writeUInt32LE(SK_CONTROL_MAGIC, OFF.magic)
  out.writeUInt32LE(SK_CONTROL_FORMAT_VERSION, OFF.format_version)
  out.writeUInt32LE(payload.length, OFF.payload_len)
  out.writeUInt32LE(crc32c(payload), OFF.payload_crc)
  payload.copy(out, OFF.payload)
  return out
}

export function decodeControlFile(buf: Buffer, file: string): SafekeeperState {
  const fail = (msg: string) => new ControlFileError(`safekeeper control file ${file}: ${msg}`)
  if (buf.length < OFF.payload) {
    throw fail(`truncated: ${buf.length} bytes, shorter than the ${OFF.payload}-byte header`)
  }
  const magic = buf.readUInt32LE(OFF.magic)
  if (magic !== SK_CONTROL_MAGIC) {
    throw fail(`bad magic ${hex(magic)} at offset ${OFF.magic}, expected ${hex(SK_CONTROL_MAGIC)}`)
  }
  const version = buf.readUInt32LE(OFF.format_version)
  if (version !== SK_CONTROL_FORMAT_VERSION) {
    throw fail(
      `unknown format version ${version} at offset ${OFF.format_version}, expected ${SK_CONTROL_FORMAT_VERSION}`,
    )
  }
  const len = buf.readUInt32LE(OFF.payload_len)
  const end = OFF.payload + len
  if (buf.length < end) {
    throw fail(
      `truncated: payload length at offset ${OFF.payload_len} is ${len}, but only ${buf.length - OFF.payload} payload bytes follow the header`,
    )
  }
  if (buf.length > end) {
    throw fail(
      `${buf.length - end} bytes after the payload end at offset ${end} (payload length at offset ${OFF.payload_len} is ${len})`,
    )
  }
  const payload = buf.subarray(OFF.payload, end)
  const stored = buf.readUInt32LE(OFF.payload_crc)
  const computed = crc32c(payload)
  if (stored !== computed) {
    throw fail(
      `CRC mismatch: stored at offset ${OFF.payload_crc} is ${hex(stored)}, CRC-32C of bytes [${OFF.payload}, ${end}) is ${hex(computed)}`,
    )
  }
  let json: unknown
  try {
    json = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    throw fail(`payload at offset ${OFF.payload} is not JSON: ${(err as Error).message}`)
  }
  const state = fromJson(json, fail)
  checkState(state, fail)
  return state
}

export function readControlFile(file: string): SafekeeperState {
  let buf: Buffer
  try {
    buf = readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ControlFileError(`safekeeper control file ${file} does not exist`, { kind: 'not_found' })
    }
    throw err
  }
  return decodeControlFile(buf, file)
}

export function writeControlFile(file: string, state: SafekeeperState): void {
  writeFileDurable(file, encodeControlFile(state))
}

type Fail = (msg: string) => ControlFileError

/** Converts the parsed payload to a state, checking each field's type; `fail` names the file. */
function fromJson(json: unknown, fail: Fail): SafekeeperState {
  const obj = (v: unknown, field: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(`${field} is not an object`)
    return v as Record<string, unknown>
  }
  const root = obj(json, 'the payload')
  const str = (o: Record<string, unknown>, field: string, where = field): string => {
    const v = o[field]
    if (typeof v !== 'string') throw fail(`${where} is ${JSON.stringify(v)}, expected a string`)
    return v
  }
  const int = (o: Record<string, unknown>, field: string, where = field): number => {
    const v = o[field]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw fail(`${where} is ${JSON.stringify(v)}, expected a non-negative integer`)
    }
    return v
  }
  const lsn = (o: Record<string, unknown>, field: string, where = field): Lsn => {
    const text = str(o, field, where)
    try {
      return parseLsn(text)
    } catch (err) {
      throw fail(`${where}: ${(err as Error).message}`)
    }
  }
  const nullableStr = (field: string): string | null => (root[field] === null ? null : str(root, field))

  const history = root['termHistory']
  if (!Array.isArray(history)) throw fail('termHistory is not an array')
  const termHistory = history.map((e: unknown, i) => {
    const where = `termHistory[${i}]`
    const entry = obj(e, where)
    return { term: int(entry, 'term', `${where}.term`), lsn: lsn(entry, 'lsn', `${where}.lsn`) }
  })
  let pageserverFeedback: PageserverFeedback | null = null
  if (root['pageserverFeedback'] !== null) {
    const fb = obj(root['pageserverFeedback'], 'pageserverFeedback')
    const where = (f: string) => `pageserverFeedback.${f}`
    pageserverFeedback = {
      lastReceivedLsn: lsn(fb, 'lastReceivedLsn', where('lastReceivedLsn')),
      diskConsistentLsn: lsn(fb, 'diskConsistentLsn', where('diskConsistentLsn')),
      remoteConsistentLsn: lsn(fb, 'remoteConsistentLsn', where('remoteConsistentLsn')),
      currentLogicalSize: int(fb, 'currentLogicalSize', where('currentLogicalSize')),
      replyTimeUs: int(fb, 'replyTimeUs', where('replyTimeUs')),
    }
  }
  return {
    tenantId: str(root, 'tenantId'),
    timelineId: str(root, 'timelineId'),
    systemId: str(root, 'systemId'),
    pgTimeline: int(root, 'pgTimeline'),
    walSegSize: int(root, 'walSegSize'),
    term: int(root, 'term'),
    termHistory,
    timelineStartLsn: lsn(root, 'timelineStartLsn'),
    localStartLsn: lsn(root, 'localStartLsn'),
    commitLsn: lsn(root, 'commitLsn'),
    truncateLsn: lsn(root, 'truncateLsn'),
    flushRecordLsn: lsn(root, 'flushRecordLsn'),
    remoteConsistentLsn: lsn(root, 'remoteConsistentLsn'),
    pageserverFeedback,
    computeConnstr: nullableStr('computeConnstr'),
  }
}

/** The checks on values and their order that hold for a state in memory and one read from disk. */
function checkState(s: SafekeeperState, fail: Fail): void {
  for (const f of ['tenantId', 'timelineId'] as const) {
    if (!/^[0-9a-f]{32}$/.test(s[f])) throw fail(`${f} "${s[f]}" is not 32 lower-case hex digits`)
  }
  if (!/^[0-9]{1,20}$/.test(s.systemId) || BigInt(s.systemId) > U64_MAX) {
    throw fail(`systemId "${s.systemId}" is not a decimal u64`)
  }
  if (!Number.isInteger(s.pgTimeline) || s.pgTimeline < 1 || s.pgTimeline > U32_MAX) {
    throw fail(`pgTimeline ${s.pgTimeline} is not a Postgres timeline id (1 .. 2^32-1)`)
  }
  if (!isValidSegmentSize(s.walSegSize)) {
    throw fail(`walSegSize ${s.walSegSize} is not a power of two from 1 MiB to 1 GiB`)
  }
  if (!Number.isSafeInteger(s.term) || s.term < 0) throw fail(`term ${s.term} is not a non-negative integer`)
  s.termHistory.forEach((e, i) => {
    if (!Number.isSafeInteger(e.term) || e.term < 1)
      throw fail(`termHistory[${i}].term ${e.term} is not a term`)
    if (e.term > s.term) throw fail(`termHistory[${i}].term ${e.term} is above term ${s.term}`)
    const prev = s.termHistory[i - 1]
    if (prev && (e.term <= prev.term || e.lsn < prev.lsn)) {
      throw fail(
        `termHistory[${i}] (term ${e.term} at ${formatLsn(e.lsn)}) does not follow termHistory[${i - 1}] ` +
          `(term ${prev.term} at ${formatLsn(prev.lsn)}): terms must ascend and LSNs must not go back`,
      )
    }
  })
  if (s.localStartLsn < s.timelineStartLsn) {
    throw fail(
      `localStartLsn ${formatLsn(s.localStartLsn)} is below timelineStartLsn ${formatLsn(s.timelineStartLsn)}`,
    )
  }
  if (s.truncateLsn > s.commitLsn) {
    throw fail(`truncateLsn ${formatLsn(s.truncateLsn)} is above commitLsn ${formatLsn(s.commitLsn)}`)
  }
  const fb = s.pageserverFeedback
  if (fb !== null) {
    for (const f of ['currentLogicalSize', 'replyTimeUs'] as const) {
      if (!Number.isSafeInteger(fb[f]) || fb[f] < 0) {
        throw fail(`pageserverFeedback.${f} ${fb[f]} is not a non-negative integer`)
      }
    }
  }
}
