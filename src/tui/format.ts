/** The dashboard's figures as short, fixed-width text: rates, seconds, uptimes and ratios. */
import { formatSize } from '../lib/units.js'

export const dash = '-'

export const sizeOrDash = (bytes: number | null): string =>
  bytes === null ? dash : formatSize(Math.max(0, bytes))

export const rateOf = (bytesPerS: number | null): string =>
  bytesPerS === null ? dash : `${formatSize(Math.round(bytesPerS))}/s`

export function countRate(perS: number | null): string {
  if (perS === null) return dash
  return perS >= 10_000 ? `${(perS / 1000).toFixed(0)}k/s` : `${perS.toFixed(perS < 10 ? 1 : 0)}/s`
}

export function seconds(s: number | null): string {
  if (s === null) return dash
  if (s === 0) return '0 s'
  if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`
  return `${s.toFixed(1)} s`
}

/** `3d04h`, `1h02m`, `5m07s`, `42s`. */
export function uptime(s: number | null): string {
  if (s === null) return dash
  const t = Math.floor(s)
  const [d, h, m, sec] = [Math.floor(t / 86400), Math.floor(t / 3600) % 24, Math.floor(t / 60) % 60, t % 60]
  const two = (n: number) => String(n).padStart(2, '0')
  if (d > 0) return `${d}d${two(h)}h`
  if (h > 0) return `${h}h${two(m)}m`
  if (m > 0) return `${m}m${two(sec)}s`
  return `${sec}s`
}

export const percent = (ratio: number | null): string =>
  ratio === null ? dash : `${(ratio * 100).toFixed(1)}%`
