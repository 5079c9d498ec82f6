import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  formatLsn,
  type Lsn,
  parseLsn,
  segmentNumber,
  segmentStart,
  walFileName,
  XLOG_BLCKSZ,
} from '../../src/postgres/lsn.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import { recordEndLsn } from '../../src/postgres/wal-page.js'
import { WalStore } from '../../src/safekeeper/wal-store.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { randomInt } from '../harness/random.js'

const fx = loadWalFixture()
const SEG = fx.segmentSize
const START = parseLsn(fx.start)
const END = parseLsn(fx.end)
const BYTES = fx.bytes()
const FIRST = parseLsn(fx.records[0].lsn)
/** Where each record ends as the decoder reports it: MAXALIGNed, and an XLOG SWITCH at its segment's end. */
const ENDS = fx.records.map((r) => {
  const lsn = parseLsn(r.lsn)
  return r.type === 'SWITCH'
    ? segmentStart(segmentNumber(lsn, SEG) + 1, SEG)
    : recordEndLsn(lsn, r.totLen, SEG)
})
const LAST_END = ENDS[ENDS.length - 1]
const OPTS = { walSegSize: SEG, pgTimeline: 1 }

/** The fixture's bytes [from, to). */
const wal = (from: Lsn, to: Lsn) => BYTES.subarray(from - START, to - START)

/**
 * Writes the fixture's bytes [from, to) in random-sized pieces, 1 byte to 200 KiB; returns how many
 * pieces there were and how many crossed a segment boundary.
 */
function feed(store: WalStore, from: Lsn, to: Lsn, seed: number, onWrite?: () => void) {
  const random = randomInt(seed)
  let writes = 0
  let crossing = 0
  for (let lsn = from; lsn < to; writes++) {
    const max = [16, XLOG_BLCKSZ, 200 * 1024][random(3)]
    const n = Math.min(1 + random(max), to - lsn)
    store.write(lsn, Buffer.from(wal(lsn, lsn + n)))
    if (segmentNumber(lsn, SEG) !== segmentNumber(lsn + n - 1, SEG)) crossing++
    lsn += n
    onWrite?.()
  }
  return { writes, crossing }
}

function segmentFile(dir: string, segNo: number): string {
  return path.join(dir, walFileName(1, segNo, SEG))
}

function isZero(buf: Buffer): boolean {
  return buf.every((b) => b === 0)
}

let dir = ''
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sk-wal-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('WalStore on real Postgres WAL', () => {
  it('stores WAL written in random pieces byte for byte, and tracks record ends as it goes', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    expect([store.writeLsn, store.flushLsn, store.endRecordLsn]).toEqual([FIRST, FIRST, FIRST])
    const ends = new Set([FIRST, ...ENDS])
    const { writes, crossing } = feed(store, FIRST, END, 1, () => {
      expect(store.endRecordLsn).toBeLessThanOrEqual(store.writeLsn)
      expect(ends.has(store.endRecordLsn)).toBe(true)
    })
    expect(writes).toBeGreaterThan(50)
    expect(crossing).toBe(2)
    expect(store.writeLsn).toBe(END)
    expect(store.flushLsn).toBe(FIRST)
    // The last record of the fixture runs into a segment it does not include.
    expect(store.endRecordLsn).toBe(LAST_END)
    expect(await store.flush()).toBe(END)
    expect(store.flushLsn).toBe(END)
    store.close()

    expect(readdirSync(dir).sort()).toEqual(fx.segments)
    for (const [i, name] of fx.segments.entries()) {
      const got = readFileSync(path.join(dir, name))
      const want = readFileSync(path.join(fx.dir, name))
      expect(got.length).toBe(SEG)
      const from = i === 0 ? FIRST - START : 0
      expect(got.subarray(from).equals(want.subarray(from))).toBe(true)
      expect(isZero(got.subarray(0, from))).toBe(true)
    }
  })

  it('reopens at the end of the last complete record and zeroes the torn record after it', async () => {
    const first = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    feed(first, FIRST, END, 2)
    await first.flush()
    first.close()
    const last = readFileSync(segmentFile(dir, segmentNumber(END - 1, SEG)))
    expect(isZero(last.subarray(LAST_END % SEG))).toBe(false)

    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    expect([store.writeLsn, store.flushLsn, store.endRecordLsn]).toEqual([LAST_END, LAST_END, LAST_END])
    const seg = readFileSync(segmentFile(dir, segmentNumber(END - 1, SEG)))
    expect(seg.length).toBe(SEG)
    expect(isZero(seg.subarray(LAST_END % SEG))).toBe(true)
    expect(seg.subarray(0, LAST_END % SEG).equals(wal(END - SEG, LAST_END))).toBe(true)
    // The decoder continues from the scan: the next record's prev-link is checked and accepted.
    store.write(LAST_END, Buffer.from(wal(LAST_END, END)))
    expect(store.writeLsn).toBe(END)
    store.close()
  })

  it('writes segments that openWalDir reads as pg_waldump does', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: START })
    feed(store, START, END, 3)
    await store.flush()
    store.close()
    const { reader } = await openWalDir(dir, { start: FIRST })
    const lsns: string[] = []
    for await (const rec of reader.records()) lsns.push(rec.lsn.toString(16))
    expect(lsns).toEqual(fx.records.map((r) => parseLsn(r.lsn).toString(16)))
  })

  it('after a crash cuts a torn tail at the last complete record, zeroing garbage and stale records', async () => {
    // A record that crosses a page boundary, cut in the middle: its first page is on disk, the rest is not.
    const i = fx.records.findIndex((r, k) => {
      const lsn = parseLsn(r.lsn)
      return lsn > START + SEG / 2 && ENDS[k] - lsn > XLOG_BLCKSZ - (lsn % XLOG_BLCKSZ)
    })
    const torn = parseLsn(fx.records[i].lsn)
    const cut = torn + XLOG_BLCKSZ - (torn % XLOG_BLCKSZ) + 100
    const first = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    feed(first, FIRST, cut, 4)
    await first.flush()
    first.close()

    // What the kernel may have written back before the crash: garbage after the cut, valid records
    // beyond a gap later in the segment, and a later segment.
    const random = randomInt(5)
    const garbage = Buffer.from(Array.from({ length: 5000 }, () => random(256)))
    const stale = parseLsn(fx.records[i + 200].lsn)
    const fd = openSync(segmentFile(dir, segmentNumber(cut, SEG)), 'r+')
    writeSync(fd, garbage, 0, garbage.length, cut % SEG)
    writeSync(fd, wal(stale, stale + 64 * 1024), 0, 64 * 1024, stale % SEG)
    closeSync(fd)
    const later = openSync(segmentFile(dir, segmentNumber(cut, SEG) + 1), 'w')
    writeSync(later, wal(START + SEG, START + 2 * SEG))
    closeSync(later)

    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    expect(store.endRecordLsn).toBe(torn)
    expect(store.writeLsn).toBe(torn)
    expect(store.flushLsn).toBe(torn)
    const seg = readFileSync(segmentFile(dir, segmentNumber(cut, SEG)))
    expect(seg.length).toBe(SEG)
    expect(isZero(seg.subarray(torn % SEG))).toBe(true)
    expect(existsSync(segmentFile(dir, segmentNumber(cut, SEG) + 1))).toBe(false)
    // Writing resumes at the cut and makes the same WAL again.
    feed(store, torn, END, 6)
    expect(store.endRecordLsn).toBe(LAST_END)
    await store.flush()
    expect(store.read(FIRST, END).equals(wal(FIRST, END))).toBe(true)
    store.close()
  })

  it('truncates in the middle: later segments go, reads stop there, writing resumes there', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    feed(store, FIRST, END, 7)
    await store.flush()
    // A record boundary in the second segment, before its XLOG SWITCH.
    const at = parseLsn(fx.records.find((r) => parseLsn(r.lsn) > START + SEG + SEG / 8)!.lsn)
    expect(segmentNumber(at, SEG)).toBe(segmentNumber(START, SEG) + 1)
    const fsyncs = store.fsyncCount
    await store.truncate(at)
    expect(store.fsyncCount).toBeGreaterThan(fsyncs)
    expect([store.writeLsn, store.flushLsn, store.endRecordLsn]).toEqual([at, at, at])
    expect(readdirSync(dir).sort()).toEqual(fx.segments.slice(0, 2))
    const seg = readFileSync(segmentFile(dir, segmentNumber(at, SEG)))
    expect(seg.length).toBe(SEG)
    expect(isZero(seg.subarray(at % SEG))).toBe(true)
    expect(store.read(at - 100, 1000).equals(wal(at - 100, at))).toBe(true)
    expect(store.read(at, 1000).length).toBe(0)
    expect(() => store.read(at + 1, 10)).toThrow(/durable only up to/)
    expect(() => store.write(END, Buffer.alloc(8))).toThrow(
      expect.objectContaining({
        kind: 'conflict',
        message: expect.stringContaining(
          `at 0/A00000 in ${dir}, but the WAL written ends at ${formatLsn(at)}`,
        ),
      }),
    )

    feed(store, at, END, 8)
    expect(store.endRecordLsn).toBe(LAST_END)
    await store.flush()
    expect(store.read(FIRST, END).equals(wal(FIRST, END))).toBe(true)
    store.close()
  })

  it('reads across segment boundaries and refuses what it does not hold', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    feed(store, FIRST, END, 9)
    expect(() => store.read(FIRST, 10)).not.toThrow()
    expect(store.read(FIRST, 10).length).toBe(0)
    await store.flush()
    const boundary = START + SEG
    expect(store.read(boundary - 300, 600).equals(wal(boundary - 300, boundary + 300))).toBe(true)
    expect(store.read(boundary - 5, 2 * SEG + 10).equals(wal(boundary - 5, END))).toBe(true)
    expect(() => store.read(FIRST - 1, 10)).toThrow(expect.objectContaining({ kind: 'not_found' }))
    store.close()
  })

  it('reads the segment it is writing, through the descriptor it writes with', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    const mid = FIRST + 100_000
    store.write(FIRST, Buffer.from(wal(FIRST, mid)))
    await store.flush()
    // The walsender serves WAL just flushed while the acceptor still writes to the same segment.
    expect(store.read(FIRST, mid - FIRST).equals(wal(FIRST, mid))).toBe(true)
    store.close()
  })

  it('removes whole segments below an LSN and no longer serves them', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    feed(store, FIRST, END, 10)
    expect(() => store.removeSegmentsBelow(START + SEG)).toThrow(/durable only up to/)
    await store.flush()
    expect(store.removeSegmentsBelow(START + SEG - 1)).toEqual([])
    expect(store.removeSegmentsBelow(START + 2 * SEG + 16)).toEqual(fx.segments.slice(0, 2))
    expect(readdirSync(dir)).toEqual([fx.segments[2]])
    expect(store.localStartLsn).toBe(START + 2 * SEG)
    expect(() => store.read(START + 2 * SEG - 1, 10)).toThrow(expect.objectContaining({ kind: 'not_found' }))
    expect(store.read(START + 2 * SEG, 100).equals(wal(START + 2 * SEG, START + 2 * SEG + 100))).toBe(true)
    store.close()

    const reopened = await WalStore.open(dir, { ...OPTS, scanFrom: parseLsn('0/900028') })
    expect(reopened.localStartLsn).toBe(START + 2 * SEG)
    expect(reopened.flushLsn).toBe(LAST_END)
    reopened.close()
  })

  it('group commit: flushes that arrive while an fsync runs share the next one', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    const before = store.fsyncCount
    const flushes: Promise<Lsn>[] = []
    const writtenTo: Lsn[] = []
    for (let lsn = FIRST, k = 0; k < 20; k++) {
      const next = lsn + 8192
      store.write(lsn, Buffer.from(wal(lsn, next)))
      lsn = next
      writtenTo.push(lsn)
      flushes.push(store.flush())
    }
    const results = await Promise.all(flushes)
    // The first flush syncs the new segment and the directory; the other 19 share one more fsync.
    expect(store.fsyncCount - before).toBe(3)
    expect(results[0]).toBe(writtenTo[0])
    for (const r of results.slice(1)) expect(r).toBe(writtenTo[19])
    for (const [k, r] of results.entries()) expect(r).toBeGreaterThanOrEqual(writtenTo[k])
    expect(store.flushLsn).toBe(writtenTo[19])
    // Nothing written since: a flush syncs nothing.
    expect(await store.flush()).toBe(writtenTo[19])
    expect(store.fsyncCount - before).toBe(3)
    store.close()
  })

  it('refuses bytes that are not WAL until it is truncated at a record boundary', async () => {
    const store = await WalStore.open(dir, { ...OPTS, scanFrom: FIRST })
    const boundary = ENDS[10]
    store.write(FIRST, Buffer.from(wal(FIRST, boundary)))
    const garbage = Buffer.alloc(64, 0xab)
    expect(() => store.write(boundary, garbage)).toThrow(
      expect.objectContaining({ kind: 'corruption', message: expect.stringMatching(/invalid at 0\/7/) }),
    )
    expect(store.writeLsn).toBe(boundary)
    expect(() => store.write(boundary, Buffer.from(wal(boundary, boundary + 100)))).toThrow(/invalid at/)
    await store.truncate(boundary)
    feed(store, boundary, END, 11)
    expect(store.endRecordLsn).toBe(LAST_END)
    await store.flush()
    expect(statSync(segmentFile(dir, segmentNumber(END - 1, SEG))).size).toBe(SEG)
    store.close()
  })
})
