import { describe, expect, it } from 'vitest'
import {
  assertLsn,
  formatLsn,
  formatLsnPadded,
  LsnError,
  maxAlign,
  parseLsn,
  parseWalFileName,
  readLsn,
  walFileName,
  writeLsn,
} from '../../src/postgres/lsn.js'

describe('LSN', () => {
  it('parses and prints the X/X form as Postgres does', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748)
    expect(parseLsn('1/0')).toBe(2 ** 32)
    expect(parseLsn('a/ff')).toBe(10 * 2 ** 32 + 255)
    expect(formatLsn(0x16b3748)).toBe('0/16B3748')
    expect(formatLsn(5 * 2 ** 32 + 1)).toBe('5/1')
    expect(formatLsnPadded(0x16b3748)).toBe('0/016B3748')
    for (const v of [0, 1, 0xffffffff, 2 ** 32, 2 ** 53 - 1]) expect(parseLsn(formatLsn(v))).toBe(v)
  })

  it('rejects malformed text and values above 2^53 with a clear error', () => {
    for (const bad of ['', '0', '0/', '/1', 'x/1', '0/123456789', '0/1/2', '-1/0']) {
      expect(() => parseLsn(bad)).toThrow(LsnError)
    }
    expect(() => parseLsn('200000/0')).toThrow(/above 2\^53/)
    expect(() => assertLsn(2 ** 53)).toThrow(/out of range/)
    expect(() => assertLsn(-1)).toThrow(LsnError)
    const b = Buffer.alloc(8)
    b.writeUInt32LE(0x200000, 4)
    expect(() => readLsn(b, 0)).toThrow(/above 2\^53/)
  })

  it('stores LSNs as little-endian uint64', () => {
    const b = Buffer.alloc(8)
    writeLsn(b, 0, 0x1_2345_6789)
    expect(b.toString('hex')).toBe('8967452301000000')
    expect(readLsn(b, 0)).toBe(0x1_2345_6789)
  })

  it('names segment files for any segment size', () => {
    expect(walFileName(1, 3, 16 << 20)).toBe('000000010000000000000003')
    expect(walFileName(2, 256 + 5, 16 << 20)).toBe('000000020000000100000005')
    expect(walFileName(1, 4096 + 7, 1 << 20)).toBe('000000010000000100000007')
    expect(parseWalFileName('000000010000000100000007', 1 << 20)).toEqual({ timeline: 1, segNo: 4103 })
    expect(parseWalFileName('00000001000000010000000', 1 << 20)).toBeNull()
  })

  it('aligns to MAXALIGN', () => {
    expect([0, 1, 7, 8, 9, 114].map(maxAlign)).toEqual([0, 8, 8, 8, 16, 120])
  })
})
