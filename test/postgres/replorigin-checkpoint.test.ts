/** pg_logical/replorigin_checkpoint round-trips, and damage is refused (a real file is read in test/pgdata/commit-ts.pg.test.ts). */
import { describe, expect, it } from 'vitest'
import { crc32c } from '../../src/postgres/crc32c.js'
import {
  decodeReplOriginCheckpoint,
  encodeReplOriginCheckpoint,
  REPLICATION_STATE_MAGIC,
  ReplOriginCheckpointFormatError,
} from '../../src/postgres/replorigin-checkpoint.js'

describe('replorigin_checkpoint', () => {
  it('is the magic, 16 bytes per origin and a CRC-32C of both', () => {
    const states = [
      { roident: 1, remoteLsn: 0x1_2345_6780 },
      { roident: 65534, remoteLsn: 0 },
    ]
    const file = encodeReplOriginCheckpoint(states)
    expect(file.length).toBe(4 + 2 * 16 + 4)
    expect(file.readUInt32LE(0)).toBe(REPLICATION_STATE_MAGIC)
    expect(file.readUInt16LE(4)).toBe(1)
    expect(file.subarray(6, 12).equals(Buffer.alloc(6))).toBe(true)
    expect(file.readBigUInt64LE(12)).toBe(0x1_2345_6780n)
    expect(file.readUInt32LE(36)).toBe(crc32c(file.subarray(0, 36)))
    expect(decodeReplOriginCheckpoint(file)).toEqual(states)
    expect(decodeReplOriginCheckpoint(encodeReplOriginCheckpoint([]))).toEqual([])
  })

  it('refuses a wrong size, magic or CRC', () => {
    const file = encodeReplOriginCheckpoint([{ roident: 3, remoteLsn: 77 }])
    const bad = (b: Buffer) => () => decodeReplOriginCheckpoint(b)
    expect(bad(file.subarray(0, file.length - 1))).toThrow(ReplOriginCheckpointFormatError)
    const magic = Buffer.from(file)
    magic[0] ^= 1
    expect(bad(magic)).toThrow(/magic/)
    const flipped = Buffer.from(file)
    flipped[12] ^= 1
    expect(bad(flipped)).toThrow(/CRC/)
  })
})
