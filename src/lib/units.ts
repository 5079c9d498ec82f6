/**
 * Units as people write and read them, in Neon's style, in one place for config files, tenant config,
 * CLI flags and output:
 * - durations: humantime, one or more `<integer><unit>` parts with optional spaces ("20s", "10 m",
 *   "1 hr", "7 days", "1h 30m", "500ms"); units ms, s, m, h, d, w and their long spellings. A unit is
 *   required, as in Neon, because a bare "20" could mean seconds or milliseconds.
 * - byte sizes: an integer, or a number with an IEC unit B, KiB, MiB, GiB or TiB ("256 MiB", "1.5 GiB"
 *   if that is a whole number of bytes). Decimal units (KB, MB) are refused: Neon's sizes are binary,
 *   and "MB" is read both ways by different people.
 * - rates: a byte size per second, "/s" required ("20MiB/s", "512 KiB/s", "1.5 GiB/s").
 * Output sizes are IEC with one decimal ("39.7 MiB").
 */
import { type ErrorKind, ZenithError } from './errors.js'

export class UnitError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'UnitError'
}

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB
export const TiB = 1024 * GiB

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
export const WEEK = 7 * DAY

const IEC_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const

export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`not a byte count: ${bytes}`)
  if (bytes < 1024) return `${bytes} B`
  let n = bytes / 1024
  let unit = 0
  // Round first, so 1023.96 KiB becomes "1.0 MiB" rather than "1024.0 KiB".
  while (Number(n.toFixed(1)) >= 1024 && unit < IEC_UNITS.length - 1) {
    n /= 1024
    unit++
  }
  return `${n.toFixed(1)} ${IEC_UNITS[unit]}`
}

// --- durations -------------------------------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  msec: 1,
  millis: 1,
  s: SECOND,
  sec: SECOND,
  secs: SECOND,
  second: SECOND,
  seconds: SECOND,
  m: MINUTE,
  min: MINUTE,
  mins: MINUTE,
  minute: MINUTE,
  minutes: MINUTE,
  h: HOUR,
  hr: HOUR,
  hrs: HOUR,
  hour: HOUR,
  hours: HOUR,
  d: DAY,
  day: DAY,
  days: DAY,
  w: WEEK,
  week: WEEK,
  weeks: WEEK,
}

/** Milliseconds for a humantime-style text, or undefined if it is not one. */
export function durationFromText(text: string): number | undefined {
  const part = /\s*(\d+)\s*([a-z]+)/y
  const trimmed = text.trimEnd()
  let total = 0
  let parts = 0
  while (part.lastIndex < trimmed.length) {
    const m = part.exec(trimmed)
    if (m === null) return undefined
    const unit = DURATION_UNITS[m[2]]
    if (unit === undefined) return undefined
    total += Number(m[1]) * unit
    parts++
  }
  return parts > 0 ? total : undefined
}

/** Parses a humantime-style duration ("20 s", "1h 30m") into milliseconds. */
export function parseDuration(text: string): number {
  const ms = durationFromText(text)
  if (ms === undefined || !Number.isSafeInteger(ms)) {
    throw new UnitError(`${JSON.stringify(text)} is not a duration; ${DURATION_HINT}`)
  }
  return ms
}

export const DURATION_HINT = 'use a whole number with a unit (ms, s, m, h, d, w), e.g. "20 s" or "1h 30m"'

/** Milliseconds as Neon prints durations: "20 s", "10 m", "1 h 30 m", "7 days", "500 ms", "0 s". */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a duration in milliseconds: ${ms}`)
  if (ms === 0) return '0 s'
  const parts: string[] = []
  let rest = ms
  const days = Math.floor(rest / DAY)
  if (days > 0) parts.push(days === 1 ? '1 day' : `${days} days`)
  rest -= days * DAY
  for (const [size, unit] of [
    [HOUR, 'h'],
    [MINUTE, 'm'],
    [SECOND, 's'],
    [1, 'ms'],
  ] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n} ${unit}`)
    rest -= n * size
  }
  return parts.join(' ')
}

// --- byte sizes ------------------------------------------------------------------------------------------

const BYTE_UNITS: Record<string, number> = { b: 1, kib: KiB, mib: MiB, gib: GiB, tib: TiB }

export function bytesFromText(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)?\s*$/.exec(text)
  if (m === null) return undefined
  const unit = m[2] === undefined ? 1 : BYTE_UNITS[m[2].toLowerCase()]
  if (unit === undefined) return undefined
  const n = Number(m[1]) * unit
  return Number.isSafeInteger(n) ? n : undefined
}

/** Parses "268435456", "256 MiB", "1.5GiB" into bytes. */
export function parseBytes(text: string): number {
  const n = bytesFromText(text)
  if (n === undefined) throw new UnitError(`${JSON.stringify(text)} is not a byte size; ${BYTES_HINT}`)
  return n
}

export const BYTES_HINT = 'use a number of bytes or a number with KiB, MiB, GiB or TiB'

/** Bytes in the largest IEC unit that divides them exactly ("256 MiB"), else the bare integer. */
export function formatBytes(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a byte count: ${n}`)
  for (const [size, unit] of [
    [TiB, 'TiB'],
    [GiB, 'GiB'],
    [MiB, 'MiB'],
    [KiB, 'KiB'],
  ] as const) {
    if (n > 0 && n % size === 0) return `${n / size} ${unit}`
  }
  return String(n)
}

// --- rates -----------------------------------------------------------------------------------------------

const RATE_HINT = 'use a byte size per second with KiB, MiB, GiB or TiB, e.g. "20MiB/s" or "512 KiB/s"'

/** Parses "20MiB/s", "512 KiB/s" into bytes per second (a whole, positive number). */
export function parseRate(text: string): number {
  const m = /^(.*?)\s*\/\s*s\s*$/.exec(text)
  const n = m === null ? undefined : bytesFromText(m[1])
  if (n === undefined || n <= 0) throw new UnitError(`${JSON.stringify(text)} is not a rate; ${RATE_HINT}`)
  return n
}
