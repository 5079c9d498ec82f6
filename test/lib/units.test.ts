import { describe, expect, it } from 'vitest'
import { formatSize } from '../../src/lib/units.js'

describe('formatSize', () => {
  it('prints IEC units with one decimal', () => {
    expect(formatSize(0)).toBe('0 B')
    expect(formatSize(1023)).toBe('1023 B')
    expect(formatSize(1024)).toBe('1.0 KiB')
    expect(formatSize(41_627_238)).toBe('39.7 MiB')
    expect(formatSize(1024 ** 3 * 1.5)).toBe('1.5 GiB')
    // 1023.96 KiB rounds up into the next unit rather than showing 1024.0 KiB.
    expect(formatSize(1024 * 1024 - 40)).toBe('1.0 MiB')
  })

  it('refuses what is not a byte count', () => {
    expect(() => formatSize(-1)).toThrow(RangeError)
    expect(() => formatSize(Number.NaN)).toThrow(RangeError)
  })
})
