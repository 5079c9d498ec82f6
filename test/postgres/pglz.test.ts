import { describe, expect, it } from 'vitest'
import { PglzError, pglzDecompress } from '../../src/postgres/pglz.js'
import { rng } from '../harness/random.js'

const MAX_OFFSET = 0x0fff
const MAX_MATCH = 273
const MIN_MATCH = 3

/**
 * A test-only greedy compressor emitting the same tags as Postgres' pglz_compress. Postgres keeps a
 * history of candidates; one candidate per 3-byte prefix is enough to exercise every decoder path
 * (overlapping runs, long matches with the extension byte, far offsets). `maxMatch` lets a test force
 * short tags only.
 */
function pglzCompress(src: Uint8Array, maxMatch = MAX_MATCH): Buffer {
  const out: number[] = []
  let ctrlAt = -1
  let ctrlBit = 0x100
  const lastSeen = new Map<number, number>()
  const key = (i: number) => (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]

  const item = (isTag: boolean) => {
    if (ctrlBit === 0x100) {
      ctrlAt = out.length
      out.push(0)
      ctrlBit = 1
    }
    if (isTag) out[ctrlAt] |= ctrlBit
    ctrlBit <<= 1
  }

  let i = 0
  while (i < src.length) {
    let len = 0
    let off = 0
    if (i + MIN_MATCH <= src.length) {
      const cand = lastSeen.get(key(i))
      if (cand !== undefined && i - cand <= MAX_OFFSET) {
        const limit = Math.min(maxMatch, src.length - i)
        while (len < limit && src[cand + len] === src[i + len]) len++
        off = i - cand
      }
    }
    if (len >= MIN_MATCH) {
      item(true)
      if (len >= 18) out.push(((off >> 4) & 0xf0) | 0x0f, off & 0xff, len - 18)
      else out.push(((off >> 4) & 0xf0) | (len - 3), off & 0xff)
    } else {
      len = 1
      item(false)
      out.push(src[i])
    }
    for (let j = i; j < i + len && j + MIN_MATCH <= src.length; j++) lastSeen.set(key(j), j)
    i += len
  }
  return Buffer.from(out)
}

/** Something shaped like a heap page: header, line pointers, a hole, then similar-looking tuples. */
function heapLikePage(next: () => number): Buffer {
  const page = Buffer.alloc(8192)
  const ntuples = 20 + Math.floor(next() * 80)
  page.writeUInt16LE(24 + ntuples * 4, 12)
  let upper = 8192
  for (let t = 0; t < ntuples; t++) {
    const size = 32 + Math.floor(next() * 48)
    upper -= size
    page.writeUInt32LE((upper & 0x7fff) | (1 << 15) | (size << 17), 24 + t * 4)
    page.writeUInt32LE(700 + t, upper)
    page.writeUInt16LE(t + 1, upper + 18)
    for (let b = 24; b < size; b++) page[upper + b] = b % 7 === 0 ? Math.floor(next() * 256) : 0x41 + (b % 26)
  }
  page.writeUInt16LE(upper, 14)
  return page
}

function randomBytes(next: () => number, n: number, alphabet = 256): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * alphabet)
  return b
}

function roundTrip(raw: Buffer, maxMatch?: number) {
  const packed = pglzCompress(raw, maxMatch)
  expect(pglzDecompress(packed, raw.length).equals(raw)).toBe(true)
  return packed
}

function expectPglzError(fn: () => unknown, pattern: RegExp) {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(caught).toBeInstanceOf(PglzError)
  expect((caught as Error).message).toMatch(pattern)
  expect((caught as Error).message).not.toContain('\n')
}

describe('pglzDecompress: hand-built streams', () => {
  it('decodes literals across several control bytes', () => {
    const src = Buffer.from([0x00, ...Buffer.from('abcdefgh'), 0x00, ...Buffer.from('ij')])
    expect(pglzDecompress(src, 10).toString()).toBe('abcdefghij')
  })

  it('repeats a single byte with an offset-1 overlapping copy', () => {
    // control 0b10: literal 'a', then tag length 10 offset 1
    const src = Buffer.from([0x02, 0x61, 0x07, 0x01])
    expect(pglzDecompress(src, 11).toString()).toBe('a'.repeat(11))
  })

  it('decodes the overlapping example from pg_lzcompress.c', () => {
    // five literals "11234", then a tag of length 16 at offset 4 whose source overlaps its destination
    const src = Buffer.from([0x20, ...Buffer.from('11234'), 0x0d, 0x04])
    expect(pglzDecompress(src, 21).toString()).toBe('112341234123412341234')
  })

  it('handles a tag whose length nibble is 15 (length 18 plus the extension byte)', () => {
    expect(pglzDecompress(Buffer.from([0x02, 0x78, 0x0f, 0x01, 0x00]), 19).toString()).toBe('x'.repeat(19))
    expect(pglzDecompress(Buffer.from([0x02, 0x78, 0x0f, 0x01, 0xff]), 274).toString()).toBe('x'.repeat(274))
  })

  it('copies a long non-overlapping match and a long match with period 3', () => {
    const lit = Buffer.from('abc')
    // 'abc' then 270 bytes from offset 3 (overlapping, period 3)
    const src = Buffer.from([0x08, ...lit, 0x0f, 0x03, 270 - 18])
    expect(pglzDecompress(src, 273).toString()).toBe('abc'.repeat(91))
  })

  it('reaches back the largest encodable offset, 4095', () => {
    const next = rng(7)
    const head = randomBytes(next, 4095)
    const parts: number[] = []
    for (let i = 0; i < head.length; i += 8) parts.push(0x00, ...head.subarray(i, i + 8))
    // 4095 = 511 full groups of 8 literals + a group with 7 literals, so the tag is the 8th item (bit 7)
    parts[parts.length - 8] = 0x80
    parts.push(0xf0, 0xff)
    const out = pglzDecompress(Buffer.from(parts), 4098)
    expect(out.subarray(0, 4095).equals(head)).toBe(true)
    expect(out.subarray(4095).equals(head.subarray(0, 3))).toBe(true)
  })

  it('decodes an empty stream to an empty buffer', () => {
    expect(pglzDecompress(Buffer.alloc(0), 0).length).toBe(0)
  })

  it('clips a final match that runs past rawSize, as Postgres does', () => {
    expect(pglzDecompress(Buffer.from([0x02, 0x61, 0x07, 0x01]), 5).toString()).toBe('aaaaa')
  })

  it('ignores the unused bits of the last control byte', () => {
    expect(pglzDecompress(Buffer.from([0xfe, 0x61]), 1).toString()).toBe('a')
  })
})

describe('pglzDecompress: malformed input', () => {
  it('rejects offset 0', () => {
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x02, 0x61, 0x00, 0x00]), 4),
      /offset 0 at input offset 2/,
    )
  })

  it('rejects an offset beyond the output produced so far', () => {
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x02, 0x61, 0x00, 0x02]), 4),
      /offset 2 points before the start of the output \(1 bytes produced\) at input offset 2/,
    )
    expectPglzError(() => pglzDecompress(Buffer.from([0x01, 0x00, 0x01]), 3), /offset 1 .* at input offset 1/)
  })

  it('rejects a tag cut short and a missing extension byte', () => {
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x02, 0x61, 0x07]), 11),
      /inside the .*tag at input offset 2/,
    )
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x02, 0x61, 0x0f, 0x01]), 30),
      /extension byte .* offset 2/,
    )
  })

  it('rejects input that ends before rawSize bytes were produced', () => {
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x00, 0x61]), 2),
      /ended early at input offset 2: .*1 of 2/,
    )
    expectPglzError(() => pglzDecompress(Buffer.alloc(0), 1), /ended early at input offset 0/)
    // a control byte with nothing after it
    const group = [0x00, ...Buffer.from('abcdefgh')]
    expectPglzError(
      () => pglzDecompress(Buffer.from([...group, 0x00]), 10),
      /ended early at input offset 10: .*8 of 10/,
    )
  })

  it('rejects trailing input once the output is complete', () => {
    expectPglzError(
      () => pglzDecompress(Buffer.from([0x00, 0x61, 0x62]), 1),
      /trailing input at input offset 2/,
    )
    expectPglzError(() => pglzDecompress(Buffer.from([0x00]), 0), /trailing input at input offset 0/)
    expectPglzError(() => pglzDecompress(Buffer.from([0x02, 0x61, 0x07, 0x01, 0x00]), 5), /trailing input/)
  })

  it('rejects a nonsensical rawSize', () => {
    expectPglzError(() => pglzDecompress(Buffer.alloc(0), -1), /raw size -1/)
    expectPglzError(() => pglzDecompress(Buffer.alloc(0), 1.5), /raw size 1.5/)
  })
})

describe('pglzDecompress: round trips through a test compressor', () => {
  it('restores heap-like, random, repetitive and zero pages', () => {
    const next = rng(42)
    for (let n = 0; n < 50; n++) {
      const packed = roundTrip(heapLikePage(next))
      expect(packed.length).toBeLessThan(8192)
    }
    for (let n = 0; n < 20; n++) roundTrip(randomBytes(next, 8192))
    for (let n = 0; n < 20; n++) roundTrip(randomBytes(next, 8192, 3))
    expect(roundTrip(Buffer.alloc(8192)).length).toBeLessThan(100)
    roundTrip(Buffer.from('abcdefgh'.repeat(1024)))
    roundTrip(Buffer.from('abc'.repeat(3000)))
  })

  it('restores data compressed with short tags only (no extension bytes)', () => {
    const next = rng(3)
    for (let n = 0; n < 10; n++) roundTrip(heapLikePage(next), 17)
    roundTrip(Buffer.alloc(8192, 0x20), 17)
  })

  it('restores every short length, including the 8-item group boundaries', () => {
    const next = rng(11)
    for (let size = 0; size <= 300; size++) {
      roundTrip(randomBytes(next, size, 4))
      roundTrip(Buffer.alloc(size, 7))
    }
  })
})

describe('pglzDecompress: fuzzed corruption', () => {
  it('either decodes to rawSize bytes or throws PglzError, 2,000 times', () => {
    const next = rng(2024)
    const sources = [
      heapLikePage(next),
      heapLikePage(next),
      randomBytes(next, 4096, 5),
      Buffer.alloc(8192, 1),
    ]
    const packed = sources.map((s) => pglzCompress(s))
    let decoded = 0
    let rejected = 0
    const started = Date.now()
    for (let n = 0; n < 2000; n++) {
      const which = n % sources.length
      const bytes = Buffer.from(packed[which])
      let rawSize = sources[which].length
      let input: Buffer = bytes
      switch (Math.floor(next() * 5)) {
        case 0:
          for (let k = 1 + Math.floor(next() * 4); k > 0; k--)
            bytes[Math.floor(next() * bytes.length)] ^= 1 + Math.floor(next() * 255)
          break
        case 1:
          input = bytes.subarray(0, Math.floor(next() * bytes.length))
          break
        case 2: {
          const at = Math.floor(next() * bytes.length)
          input = Buffer.concat([
            bytes.subarray(0, at),
            randomBytes(next, 1 + Math.floor(next() * 8)),
            bytes.subarray(at),
          ])
          break
        }
        case 3:
          rawSize = Math.max(0, rawSize + Math.floor(next() * 64) - 32)
          break
        default:
          input = randomBytes(next, 1 + Math.floor(next() * 300))
          rawSize = Math.floor(next() * 2000)
      }
      try {
        const out = pglzDecompress(input, rawSize)
        expect(out.length).toBe(rawSize)
        decoded++
      } catch (err) {
        expect(err).toBeInstanceOf(PglzError)
        rejected++
      }
    }
    expect(decoded + rejected).toBe(2000)
    expect(rejected).toBeGreaterThan(500)
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})
