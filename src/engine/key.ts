/**
 * Keys: 18 bytes in Neon's layout (field1 u8, field2 u32, field3 u32, field4 u32, field5 u8, field6 u32),
 * big-endian, so comparing the bytes compares the keys. In memory a key is also used as an 18-character
 * latin1 string (`keyStr`): one character per byte keeps the order and makes a cheap Map key.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export const KEY_SIZE = 18

const OFF = { field1: 0, field2: 1, field3: 5, field4: 9, field5: 13, field6: 14 } as const

export interface KeyFields {
  field1: number
  field2: number
  field3: number
  field4: number
  field5: number
  field6: number
}

export class KeyError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'KeyError'
}

export const KEY_MIN: Buffer = Buffer.alloc(KEY_SIZE, 0)
export const KEY_MAX: Buffer = Buffer.alloc(KEY_SIZE, 0xff)

export function encodeKey(f: KeyFields): Buffer {
  const k = Buffer.allocUnsafe(KEY_SIZE)
  k[OFF.field1] = f.field1
  k.writeUInt32BE(f.field2, OFF.field2)
  k.writeUInt32BE(f.field3, OFF.field3)
  k.writeUInt32BE(f.field4, OFF.field4)
  k[OFF.field5] = f.field5
  k.writeUInt32BE(f.field6, OFF.field6)
  return k
}

export function decodeKey(k: Buffer): KeyFields {
  assertKey(k)
  return {
    field1: k[OFF.field1],
    field2: k.readUInt32BE(OFF.field2),
    field3: k.readUInt32BE(OFF.field3),
    field4: k.readUInt32BE(OFF.field4),
    field5: k[OFF.field5],
    field6: k.readUInt32BE(OFF.field6),
  }
}

export function assertKey(k: Buffer): void {
  if (k.length !== KEY_SIZE) throw new KeyError(`a key is ${KEY_SIZE} bytes, got ${k.length}`)
}

export function compareKeys(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b)
}

/** 36 upper-case hex digits, as Neon prints keys and names layer files. */
export function keyToHex(k: Buffer): string {
  return k.toString('hex').toUpperCase()
}

export function keyFromHex(hex: string): Buffer {
  if (!/^[0-9A-Fa-f]{36}$/.test(hex)) throw new KeyError(`invalid key "${hex}": expected 36 hex digits`)
  return Buffer.from(hex, 'hex')
}

export function keyStr(k: Buffer): string {
  return k.toString('latin1')
}

export function keyFromStr(s: string): Buffer {
  return Buffer.from(s, 'latin1')
}

/** The key right after `k` (KEY_MAX has none). */
export function nextKey(k: Buffer): Buffer {
  const n = Buffer.from(k)
  for (let i = KEY_SIZE - 1; i >= 0; i--) {
    if (n[i] !== 0xff) {
      n[i]++
      return n
    }
    n[i] = 0
  }
  throw new KeyError('KEY_MAX has no next key')
}

/** A half-open key range [start, end). */
export interface KeyRange {
  start: Buffer
  end: Buffer
}

export function rangeContains(r: KeyRange, k: Buffer): boolean {
  return Buffer.compare(r.start, k) <= 0 && Buffer.compare(k, r.end) < 0
}

export function rangesOverlap(a: KeyRange, b: KeyRange): boolean {
  return Buffer.compare(a.start, b.end) < 0 && Buffer.compare(b.start, a.end) < 0
}
