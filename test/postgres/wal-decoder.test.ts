import { describe, expect, it } from 'vitest'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import { WalDecodeError, WalDecoder } from '../../src/postgres/wal-decoder.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import {
  decodePageHeader,
  encodePageHeader,
  recordEndLsn,
  XLOG_PAGE_MAGIC,
  XLP_LONG_HEADER,
} from '../../src/postgres/wal-page.js'
import { WalReader } from '../../src/postgres/wal-reader.js'
import type { DecodedRecord } from '../../src/postgres/xlog-record.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { randomInt } from '../harness/random.js'
import { asWaldumpRecord } from '../harness/waldump.js'

const fx = loadWalFixture()
const START = parseLsn(fx.start)

/** Feeds `bytes` (WAL from `start`) in the given chunk sizes and collects records until input runs out. */
function decodeAll(bytes: Buffer, start: number, chunk: (i: number) => number, startLsn = start) {
  const d = new WalDecoder({ startLsn, segmentSize: fx.segmentSize, timeline: 1 })
  const records: DecodedRecord[] = []
  let off = startLsn - start
  let error: WalDecodeError | null = null
  for (let i = 0; off < bytes.length && !error; i++) {
    const n = Math.min(chunk(i), bytes.length - off)
    d.feed(bytes.subarray(off, off + n))
    off += n
    try {
      for (let r = d.next(); r; r = d.next()) records.push(r)
    } catch (err) {
      if (!(err instanceof WalDecodeError)) throw err
      error = err
    }
  }
  return { records, error, decoder: d }
}

describe('WAL decoder on real WAL (1 MiB segments, pglz images, an XLOG SWITCH)', () => {
  it('reads the segment directory exactly as pg_waldump does', async () => {
    const { reader, wal } = await openWalDir(fx.dir, { start: START, end: parseLsn(fx.end) })
    expect(wal.segmentSize).toBe(1 << 20)
    const got: unknown[] = []
    for await (const rec of reader.records()) got.push(asWaldumpRecord(rec))
    expect(got).toEqual(fx.records)
    expect(reader.stop?.kind).toBe('end-reached')
    expect(fx.records.some((r) => r.type === 'SWITCH')).toBe(true)
  })

  it('gives the same records however the bytes are split into chunks', () => {
    const bytes = fx.bytes()
    const whole = decodeAll(bytes, START, () => bytes.length)
    expect(whole.records.map((r) => formatLsn(r.lsn))).toEqual(fx.records.map((r) => r.lsn))
    const random = randomInt(7)
    const splits: [Buffer, () => number][] = [
      [bytes, () => 1 + random(20000)],
      [bytes, () => 8192],
      // Tiny chunks split page and record headers everywhere; a prefix keeps the test fast.
      [bytes.subarray(0, 300_000), () => 1 + random(7)],
    ]
    for (const [input, chunk] of splits) {
      const split = decodeAll(input, START, chunk)
      const n = split.records.length
      expect(n).toBeGreaterThan(100)
      expect(split.records.map((r) => r.raw.toString('hex'))).toEqual(
        whole.records.slice(0, n).map((r) => r.raw.toString('hex')),
      )
    }
  })

  it('starting at a page that opens with a continued record skips to the next record', () => {
    const bytes = fx.bytes()
    const all = decodeAll(bytes, START, () => bytes.length).records
    // A record that crosses a page boundary, so the next page starts with its continuation.
    const crossing = all.find((r) => Math.floor(r.lsn / 8192) !== Math.floor((r.lsn + r.totLen) / 8192))!
    const page = (Math.floor(crossing.lsn / 8192) + 1) * 8192
    const { records, error } = decodeAll(bytes, START, () => 65536, page)
    expect(error).toBeNull()
    expect(records[0].lsn).toBe(all.find((r) => r.lsn > page)!.lsn)
  })

  it('computes record ends as the decoder finds them, across pages and segments', () => {
    const bytes = fx.bytes()
    const all = decodeAll(bytes, START, () => bytes.length).records
    const crossing = all.filter((r) => Math.floor(r.lsn / 8192) !== Math.floor((r.endLsn - 1) / 8192))
    expect(crossing.length).toBeGreaterThan(100)
    for (const r of all) expect(recordEndLsn(r.lsn, r.totLen, fx.segmentSize)).toBe(r.endLsn)
  })

  it('checks the first prev-link when the previous record is known', () => {
    const bytes = fx.bytes()
    const all = decodeAll(bytes, START, () => bytes.length).records
    const d = new WalDecoder({ startLsn: all[10].lsn, segmentSize: fx.segmentSize, prevLsn: all[8].lsn })
    d.feed(bytes.subarray(all[10].lsn - START))
    expect(() => d.next()).toThrow(
      `record with incorrect prev-link ${formatLsn(all[9].lsn)} at ${formatLsn(all[10].lsn)}`,
    )
  })

  it('stops with Postgres reasons at damaged bytes', () => {
    const bytes = fx.bytes()
    const all = decodeAll(bytes, START, () => bytes.length).records
    const victim = all[200]
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      [
        'a flipped body byte',
        (b) => (b[victim.lsn - START + 30] ^= 0x40),
        /incorrect resource manager data checksum in record at/,
      ],
      [
        'a zeroed length',
        (b) => b.fill(0, victim.lsn - START, victim.lsn - START + 4),
        /invalid record length at .*: wanted 24, got 0/,
      ],
      ['a bad rmgr id', (b) => (b[victim.lsn - START + 17] = 77), /invalid resource manager ID 77 at/],
      [
        'a wrong page magic',
        (b) => (b[Math.ceil((victim.lsn - START) / 8192) * 8192] ^= 1),
        /invalid magic number/,
      ],
      [
        'a wrong page address',
        (b) => (b[Math.ceil((victim.lsn - START) / 8192) * 8192 + 9] ^= 1),
        /unexpected pageaddr/,
      ],
    ]
    for (const [what, damage, reason] of cases) {
      const copy = Buffer.from(bytes)
      damage(copy)
      const { records, error } = decodeAll(copy, START, () => 100_000)
      expect(error, what).toBeInstanceOf(WalDecodeError)
      expect(error!.reason, what).toMatch(reason)
      expect(records.length, what).toBeGreaterThanOrEqual(199)
      expect(records.length, what).toBeLessThan(all.length)
    }
  })

  it('headers only: finds the same record ends in any chunking, checks headers, leaves CRCs to readers', () => {
    const bytes = fx.bytes()
    const all = decodeAll(bytes, START, () => bytes.length).records
    const ends = (input: Buffer, chunk: () => number) => {
      const d = new WalDecoder({
        startLsn: START,
        segmentSize: fx.segmentSize,
        timeline: 1,
        headersOnly: true,
      })
      const out: number[] = []
      let error: WalDecodeError | null = null
      for (let off = 0; off < input.length && !error; ) {
        const n = Math.min(chunk(), input.length - off)
        d.feed(input.subarray(off, off + n))
        off += n
        try {
          for (let end = d.nextEnd(); end !== null; end = d.nextEnd()) out.push(end)
        } catch (err) {
          if (!(err instanceof WalDecodeError)) throw err
          error = err
        }
      }
      return { out, error }
    }
    // Positions after each record as the full decoder has them: past the padding, at a page start when
    // the record filled its page, at the next segment after an XLOG SWITCH.
    const full = new WalDecoder({ startLsn: START, segmentSize: fx.segmentSize, timeline: 1 })
    full.feed(bytes)
    const starts: number[] = []
    for (let r = full.next(); r; r = full.next()) starts.push(full.position)
    expect(starts.length).toBe(all.length)
    expect(starts.filter((p) => p % 8192 === 0).length).toBeGreaterThan(0)
    const random = randomInt(11)
    for (const chunk of [() => bytes.length, () => 1 + random(20000), () => 8192]) {
      const { out, error } = ends(bytes, chunk)
      expect(error).toBeNull()
      expect(out).toEqual(starts)
    }
    const victim = all[200]
    const flipped = Buffer.from(bytes)
    flipped[victim.lsn - START + 30] ^= 0x40
    expect(ends(flipped, () => 100_000).error).toBeNull()
    const badPrev = Buffer.from(bytes)
    badPrev[victim.lsn - START + 8] ^= 0x08
    expect(ends(badPrev, () => 100_000).error?.reason).toMatch(/incorrect prev-link/)
    expect(() => new WalDecoder({ startLsn: START, headersOnly: true }).next()).toThrow(/nextEnd/)
  })

  it('reports the end of input as a clean stop for a stream source', async () => {
    const bytes = fx.bytes().subarray(0, 500_000)
    async function* source() {
      for (let off = 0; off < bytes.length; off += 4096) yield bytes.subarray(off, off + 4096)
    }
    const reader = new WalReader(source(), { startLsn: START, segmentSize: fx.segmentSize })
    let n = 0
    for await (const _ of reader.records()) n++
    expect(n).toBeGreaterThan(50)
    expect(reader.stop).toMatchObject({ kind: 'end-of-input', lsn: START + 500_000 })
  })
})

describe('WAL page header', () => {
  it('round-trips long and short headers', () => {
    const buf = Buffer.alloc(40)
    const long = {
      magic: XLOG_PAGE_MAGIC,
      info: XLP_LONG_HEADER | 0x4,
      timeline: 3,
      pageAddr: 0x2_0100_0000,
      remLen: 17,
      systemId: 7300000000000000001n,
      segmentSize: 16 << 20,
      xlogBlcksz: 8192,
    }
    expect(encodePageHeader(long, buf)).toBe(40)
    expect(decodePageHeader(buf)).toEqual(long)
    const first = fx.bytes().subarray(0, 40)
    const again = Buffer.alloc(40)
    encodePageHeader(decodePageHeader(first), again)
    expect(again).toEqual(first)
  })
})
