/**
 * What every WAL main-data parser shares: the error it throws, the bounds-checked cursor it reads through,
 * and the RelFileNode triple several records embed.
 *
 * Main data comes from disk or the network, so a short or corrupt record must surface as one typed error
 * naming the record instead of a RangeError from Buffer, or an array sized by a garbage count.
 */
import { type ErrorKind, ZenithError } from '../../lib/errors.js'
import { type Lsn, LsnError, readLsn } from '../lsn.js'
import type { RelFileNode } from '../relfile.js'

export class WalRecordFormatError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'WalRecordFormatError'
}

export function unknownOpError(rmgr: string, info: number): WalRecordFormatError {
  return new WalRecordFormatError(`${rmgr}: xl_info 0x${info.toString(16)} is not a known ${rmgr} op`)
}

export const SIZEOF_REL_FILE_NODE = 12

/** Reads little-endian, unaligned fields of one record's main data; `record` prefixes every error message. */
export class MainDataReader {
  offset = 0

  constructor(
    readonly record: string,
    readonly data: Buffer,
  ) {}

  get remaining(): number {
    return this.data.length - this.offset
  }

  fail(problem: string): never {
    throw new WalRecordFormatError(`${this.record}: ${problem}`)
  }

  /** Claims `size` bytes and returns where they start. */
  private take(size: number, what: string): number {
    const at = this.offset
    if (size < 0 || size > this.data.length - at) {
      this.fail(`${what} needs ${size} bytes at offset ${at}, but the main data is ${this.data.length} bytes`)
    }
    this.offset = at + size
    return at
  }

  u8(what: string): number {
    return this.data[this.take(1, what)]
  }

  bool(what: string): boolean {
    return this.u8(what) !== 0
  }

  u16(what: string): number {
    return this.data.readUInt16LE(this.take(2, what))
  }

  u32(what: string): number {
    return this.data.readUInt32LE(this.take(4, what))
  }

  i32(what: string): number {
    return this.data.readInt32LE(this.take(4, what))
  }

  /** int64 such as TimestampTz; values past 2^53 lose precision, which no real timestamp reaches. */
  i64(what: string): number {
    return Number(this.data.readBigInt64LE(this.take(8, what)))
  }

  lsn(what: string): Lsn {
    const at = this.take(8, what)
    try {
      return readLsn(this.data, at)
    } catch (err) {
      if (err instanceof LsnError) this.fail(`${what}: ${err.message}`)
      throw err
    }
  }

  relFileNode(what: string): RelFileNode {
    const at = this.take(SIZEOF_REL_FILE_NODE, what)
    return {
      spcNode: this.data.readUInt32LE(at),
      dbNode: this.data.readUInt32LE(at + 4),
      relNode: this.data.readUInt32LE(at + 8),
    }
  }

  /** `n` consecutive uint32 values (xids, OIDs). */
  u32Array(n: number, what: string): number[] {
    const at = this.take(n * 4, what)
    const out = new Array<number>(n)
    for (let i = 0; i < n; i++) out[i] = this.data.readUInt32LE(at + i * 4)
    return out
  }

  bytes(size: number, what: string): Buffer {
    const at = this.take(size, what)
    return this.data.subarray(at, at + size)
  }

  skip(size: number, what: string): void {
    this.take(size, what)
  }

  /**
   * Validates an element count against the bytes left before anything loops over it, so a corrupt
   * count fails here instead of allocating or iterating billions of times.
   */
  count(n: number, itemSize: number, what: string): number {
    if (n < 0) this.fail(`${what} count ${n} is negative`)
    if (n * itemSize > this.remaining) {
      this.fail(
        `${n} ${what} need ${n * itemSize} bytes at offset ${this.offset}, but only ${this.remaining} remain`,
      )
    }
    return n
  }

  /** A NUL-terminated string (the NUL is consumed); Postgres writes these as server-encoded bytes. */
  cstring(what: string): string {
    const end = this.data.indexOf(0, this.offset)
    if (end < 0) this.fail(`${what} at offset ${this.offset} has no terminating NUL`)
    const text = this.data.toString('utf8', this.offset, end)
    this.offset = end + 1
    return text
  }
}
