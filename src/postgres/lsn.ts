/**
 * Log sequence numbers: byte positions in the WAL stream.
 *
 * Postgres uses a uint64; we keep plain JS numbers for speed and refuse anything above 2^53, which a
 * cluster would reach only after writing 8 PiB of WAL.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export type Lsn = number

export const INVALID_LSN: Lsn = 0
export const MAX_LSN: Lsn = Number.MAX_SAFE_INTEGER
export const XLOG_BLCKSZ = 8192
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024
export const MAXIMUM_ALIGNOF = 8

const TWO_32 = 0x1_0000_0000

export class LsnError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'LsnError'
}

export function assertLsn(value: number, what = 'LSN'): Lsn {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LsnError(
      `${what} ${value} is out of range: valid LSNs are 0 .. 2^53-1 (0/0 .. 1FFFFF/FFFFFFFF)`,
    )
  }
  return value
}

/** Parses Postgres' `X/X` form (hex high and low 32-bit halves). */
export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim())
  if (!m) throw new LsnError(`invalid LSN "${text}": expected two hex numbers as X/X, e.g. 0/16B3748`)
  const hi = Number.parseInt(m[1], 16)
  const lo = Number.parseInt(m[2], 16)
  if (hi >= 0x20_0000)
    throw new LsnError(`LSN ${text} is above 2^53, the largest LSN zenith handles (1FFFFF/FFFFFFFF)`)
  return hi * TWO_32 + lo
}

export function formatLsn(lsn: Lsn): string {
  const hi = Math.floor(lsn / TWO_32)
  const lo = lsn - hi * TWO_32
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`
}

/** pg_waldump prints the low half zero-padded to 8 digits. */
export function formatLsnPadded(lsn: Lsn): string {
  const hi = Math.floor(lsn / TWO_32)
  const lo = lsn - hi * TWO_32
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase().padStart(8, '0')}`
}

/** Reads a uint64 LSN stored little-endian (as in WAL records and pg_control). */
export function readLsn(buf: Buffer, offset: number): Lsn {
  const lo = buf.readUInt32LE(offset)
  const hi = buf.readUInt32LE(offset + 4)
  if (hi >= 0x20_0000)
    throw new LsnError(`LSN ${hi.toString(16)}/${lo.toString(16)} at offset ${offset} is above 2^53`)
  return hi * TWO_32 + lo
}

/**
 * Reads a uint64 LSN field of WAL without the 2^53 check, for fields that are only compared with an
 * expected value (page addresses, prev-links): damaged WAL must fail that comparison, not throw. Values
 * above 2^53 come out rounded, which can never equal a valid expected LSN.
 */
export function readLsnUnchecked(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset + 4) * TWO_32 + buf.readUInt32LE(offset)
}

export function writeLsn(buf: Buffer, offset: number, lsn: Lsn): void {
  const hi = Math.floor(lsn / TWO_32)
  buf.writeUInt32LE(lsn - hi * TWO_32, offset)
  buf.writeUInt32LE(hi, offset + 4)
}

export function maxAlign(n: number): number {
  return n + ((MAXIMUM_ALIGNOF - (n % MAXIMUM_ALIGNOF)) % MAXIMUM_ALIGNOF)
}

export function isValidSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0
}

export function segmentNumber(lsn: Lsn, segSize: number): number {
  return Math.floor(lsn / segSize)
}

export function segmentOffset(lsn: Lsn, segSize: number): number {
  return lsn % segSize
}

export function segmentStart(segNo: number, segSize: number): Lsn {
  return segNo * segSize
}

export function pageStart(lsn: Lsn): Lsn {
  return lsn - (lsn % XLOG_BLCKSZ)
}

export function pageOffset(lsn: Lsn): number {
  return lsn % XLOG_BLCKSZ
}

/** WAL segment file name: timeline, then the segment number split as Postgres does. */
export function walFileName(timeline: number, segNo: number, segSize: number): string {
  const perId = TWO_32 / segSize
  const hi = Math.floor(segNo / perId)
  const lo = segNo % perId
  return [timeline, hi, lo].map((v) => v.toString(16).toUpperCase().padStart(8, '0')).join('')
}

export function parseWalFileName(name: string, segSize: number): { timeline: number; segNo: number } | null {
  if (!/^[0-9A-F]{24}$/.test(name)) return null
  const timeline = Number.parseInt(name.slice(0, 8), 16)
  const hi = Number.parseInt(name.slice(8, 16), 16)
  const lo = Number.parseInt(name.slice(16, 24), 16)
  return { timeline, segNo: hi * (TWO_32 / segSize) + lo }
}
