import { describe, expect, it } from 'vitest'
import {
  formatBytes,
  formatDuration,
  formatSize,
  parseBytes,
  parseDuration,
  parseRate,
  UnitError,
} from '../../src/lib/units.js'

const MiB = 1024 * 1024

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

describe('parsing', () => {
  it('reads humantime durations', () => {
    const cases: [string, number][] = [
      ['10 m', 600_000],
      ['20s', 20_000],
      ['1 hr', 3_600_000],
      ['7 days', 7 * 86_400_000],
      ['1 day', 86_400_000],
      ['500ms', 500],
      ['1h 30m', 5_400_000],
      ['1h30m', 5_400_000],
      ['2 weeks', 14 * 86_400_000],
      ['3 minutes 5 seconds', 185_000],
      ['10 msec', 10],
      [' 0s ', 0],
    ]
    for (const [text, ms] of cases) expect(parseDuration(text), text).toBe(ms)
    for (const bad of ['', '20', '1.5 h', '10 M', 'ten s', '1 fortnight', '-1 s', '1 h,30 m', 's']) {
      expect(() => parseDuration(bad), bad).toThrow(UnitError)
    }
  })

  it('prints durations as Neon does and reads them back', () => {
    expect(formatDuration(20_000)).toBe('20 s')
    expect(formatDuration(600_000)).toBe('10 m')
    expect(formatDuration(3_600_000)).toBe('1 h')
    expect(formatDuration(7 * 86_400_000)).toBe('7 days')
    expect(formatDuration(86_400_000)).toBe('1 day')
    expect(formatDuration(5_400_500)).toBe('1 h 30 m 500 ms')
    expect(formatDuration(0)).toBe('0 s')
    for (const ms of [0, 1, 999, 1000, 61_000, 90_061_001, 3650 * 86_400_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms)
    }
    expect(() => formatDuration(-1)).toThrow(RangeError)
  })

  it('reads byte sizes as integers or with IEC units', () => {
    const cases: [string, number][] = [
      ['268435456', 268435456],
      ['256 MiB', 256 * MiB],
      ['256MiB', 256 * MiB],
      ['64 mib', 64 * MiB],
      ['8 KiB', 8192],
      ['1 GiB', 1024 * MiB],
      ['1 TiB', 1024 * 1024 * MiB],
      ['1.5 GiB', 1536 * MiB],
      ['100 B', 100],
    ]
    for (const [text, n] of cases) expect(parseBytes(text), text).toBe(n)
    for (const bad of ['', 'abc', '64MB', '1 KB', '1.5', '0.1 KiB', '-1', '1e9', 'MiB']) {
      expect(() => parseBytes(bad), bad).toThrow(UnitError)
    }
    expect(formatBytes(256 * MiB)).toBe('256 MiB')
    expect(formatBytes(1536 * MiB)).toBe('1536 MiB')
    expect(formatBytes(8192)).toBe('8 KiB')
    expect(formatBytes(1000)).toBe('1000')
    expect(formatBytes(0)).toBe('0')
  })

  it('reads rates as a byte size per second, and says what a rate looks like', () => {
    const cases: [string, number][] = [
      ['20MiB/s', 20 * MiB],
      ['20 MiB/s', 20 * MiB],
      ['512 KiB / s', 512 * 1024],
      ['1.5GiB/s', 1536 * MiB],
      ['1000/s', 1000],
    ]
    for (const [text, n] of cases) expect(parseRate(text), text).toBe(n)
    for (const bad of ['', '20MiB', '20 MB/s', '0 MiB/s', '5 furlongs', '/s', '-1 MiB/s', '20MiB/m']) {
      expect(() => parseRate(bad), bad).toThrow(UnitError)
    }
    expect(() => parseRate('5 furlongs')).toThrow(
      '"5 furlongs" is not a rate; use a byte size per second with KiB, MiB, GiB or TiB, e.g. "20MiB/s" or "512 KiB/s"',
    )
  })
})
