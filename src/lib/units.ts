/** Sizes as people read them: IEC units with one decimal ("39.7 MiB"), for output rather than config. */

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
