/**
 * Damaged WAL must end reading with a clean, explained stop: never a crash, a hang, an exception of
 * another kind, or memory that grows with a corrupted length field.
 */

import { compressSync as lz4CompressSized } from 'lz4-napi'
import { describe, expect, it } from 'vitest'
import { BlockImageError, restoreBlockImage } from '../../src/postgres/block-image.js'
import { BLCKSZ } from '../../src/postgres/data-page.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { PglzError } from '../../src/postgres/pglz.js'
import { WalDecodeError, WalDecoder } from '../../src/postgres/wal-decoder.js'
import {
  BKPIMAGE_COMPRESS_LZ4,
  BKPIMAGE_COMPRESS_ZSTD,
  type BlockImage,
} from '../../src/postgres/xlog-record.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { randomInt } from '../harness/random.js'

const fx = loadWalFixture()
const START = parseLsn(fx.start)
const ITERATIONS = 3000

type Outcome = 'needs-input' | 'invalid'

function decode(input: Buffer, startLsn: number, chunk: () => number): { outcome: Outcome; records: number } {
  const d = new WalDecoder({ startLsn, segmentSize: fx.segmentSize, timeline: 1 })
  let records = 0
  for (let off = 0; off < input.length; ) {
    const n = Math.min(chunk(), input.length - off)
    d.feed(input.subarray(off, off + n))
    off += n
    try {
      for (let r = d.next(); r; r = d.next()) {
        records++
        // A record that passed its CRC holds images exactly as Postgres wrote them.
        for (const b of r.blocks) if (b.image) expect(restoreBlockImage(b.image).length).toBe(BLCKSZ)
      }
    } catch (err) {
      if (err instanceof WalDecodeError) return { outcome: 'invalid', records }
      throw err
    }
  }
  return { outcome: 'needs-input', records }
}

describe('damaged and truncated WAL', () => {
  it(`${ITERATIONS} random corruptions end in a clean stop`, () => {
    const bytes = fx.bytes()
    const next = randomInt(20261126)
    const outcomes = { 'needs-input': 0, invalid: 0 }
    const baseline = process.memoryUsage().heapUsed
    for (let i = 0; i < ITERATIONS; i++) {
      // A window of 32..160 KiB starting at a random page, so decoding begins on a page boundary.
      const page = next(Math.floor((bytes.length - 200_000) / 8192))
      const from = page * 8192
      const w = Buffer.from(bytes.subarray(from, from + 32_768 + next(131_072)))
      const kind = next(6)
      if (kind === 0) {
        for (let k = 1 + next(8); k > 0; k--) w[next(w.length)] ^= 1 << next(8)
      } else if (kind === 1) {
        const at = next(w.length)
        w.fill(0, at, Math.min(w.length, at + next(20_000)))
      } else if (kind === 2) {
        const at = next(w.length)
        for (let k = at; k < Math.min(w.length, at + next(64)); k++) w[k] = next(256)
      } else if (kind === 3) {
        // A length, xid, prev-link or info field of some record set to a random value.
        const at = (next(w.length >> 3) << 3) + next(24)
        if (at + 4 <= w.length) w.writeUInt32LE(next(2 ** 31) * 2 + next(2), at)
      } else if (kind === 4) {
        // A whole page replaced by another page of the same WAL.
        const dst = next(Math.floor(w.length / 8192)) * 8192
        const src = next(Math.floor(bytes.length / 8192)) * 8192
        bytes.copy(w, dst, src, src + 8192)
      }
      const input = kind === 5 ? w.subarray(0, next(w.length)) : w
      const chunk = next(2) === 0 ? () => input.length : () => 1 + next(9000)
      const { outcome } = decode(input, START + from, chunk)
      outcomes[outcome]++
    }
    expect(outcomes.invalid).toBeGreaterThan(ITERATIONS / 4)
    expect(outcomes['needs-input']).toBeGreaterThan(ITERATIONS / 10)
    expect(process.memoryUsage().heapUsed - baseline).toBeLessThan(512 * 1024 * 1024)
  })

  it('damaged compressed images fail with an image error, never anything else', () => {
    const next = randomInt(99)
    const page = Buffer.alloc(BLCKSZ)
    for (let i = 0; i < BLCKSZ; i++) page[i] = i % 97 < 40 ? 0 : next(8)
    const lz4 = lz4CompressSized(page).subarray(4)
    // A zstd frame header followed by garbage: the decoder must not trust its sizes.
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(60, 0x55)])
    const pglzImages: BlockImage[] = []
    const d = new WalDecoder({ startLsn: START, segmentSize: fx.segmentSize })
    d.feed(fx.bytes().subarray(0, 400_000))
    for (let r = d.next(); r && pglzImages.length < 50; r = d.next()) {
      for (const b of r.blocks) if (b.image?.compression === 'pglz') pglzImages.push(b.image)
    }
    const samples: BlockImage[] = [
      ...pglzImages,
      {
        data: lz4,
        holeOffset: 0,
        holeLength: 0,
        bimgInfo: BKPIMAGE_COMPRESS_LZ4,
        apply: true,
        compression: 'lz4',
      },
      {
        data: zstd,
        holeOffset: 0,
        holeLength: 0,
        bimgInfo: BKPIMAGE_COMPRESS_ZSTD,
        apply: true,
        compression: 'zstd',
      },
    ]
    expect(restoreBlockImage(samples[pglzImages.length])).toEqual(page)
    let failures = 0
    for (let i = 0; i < 2000; i++) {
      const img = samples[next(samples.length)]
      const data = Buffer.from(img.data)
      for (let k = 1 + next(4); k > 0; k--) data[next(data.length)] = next(256)
      const cut = next(3) === 0 ? data.subarray(0, next(data.length)) : data
      try {
        expect(restoreBlockImage({ ...img, data: cut }).length).toBe(BLCKSZ)
      } catch (err) {
        if (!(err instanceof PglzError || err instanceof BlockImageError)) throw err
        failures++
      }
    }
    expect(failures).toBeGreaterThan(500)
  })
})
