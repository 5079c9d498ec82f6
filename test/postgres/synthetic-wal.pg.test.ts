/** Synthetic WAL must be WAL: our decoder and Postgres' pg_waldump read it record for record. */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { restoreBlockImage } from '../../src/postgres/block-image.js'
import { formatLsn, walFileName } from '../../src/postgres/lsn.js'
import { RM_CLOG_ID, RM_XACT_ID, RM_XLOG_ID, XLOG_FPI } from '../../src/postgres/rmgr.js'
import { CLOG_XACTS_PER_PAGE } from '../../src/postgres/slru.js'
import { syntheticHeapPage } from '../../src/postgres/synthetic-page.js'
import { type RecordMix, SyntheticWal } from '../../src/postgres/synthetic-wal.js'
import { WalDecoder } from '../../src/postgres/wal-decoder.js'
import { WalWriter } from '../../src/postgres/wal-writer.js'
import type { DecodedRecord } from '../../src/postgres/xlog-record.js'
import { withTempDir } from '../harness/postgres.js'
import { runWaldump } from '../harness/waldump.js'

const SEG = 1 << 20
/** Mid-page, as a branch point is: the first page's header and an earlier record's tail come before it. */
const START = 3 * SEG + 5 * 8192 + 0x128
const PREV = START - 0x60
const SYSTEM_ID = 7301234567890123456n

function generate(mix: RecordMix, bytes: number, nextXid = 1000, start = START, prev = PREV) {
  const gen = new SyntheticWal({
    startLsn: start,
    prevLsn: prev,
    systemId: SYSTEM_ID,
    segmentSize: SEG,
    timeline: 1,
    nextXid,
    nextOid: 16500,
    mix,
    relationBlocks: 64,
  })
  const chunks: Buffer[] = []
  // Chunk sizes that are not page multiples: records cut anywhere, as XLogData may cut them.
  for (let got = 0; got < bytes; got += chunks.at(-1)!.length)
    chunks.push(gen.generate(50_000 + chunks.length * 997))
  return { gen, chunks }
}

function decodeAll(chunks: Buffer[], start = START, prev = PREV): DecodedRecord[] {
  const d = new WalDecoder({
    startLsn: start,
    segmentSize: SEG,
    timeline: 1,
    systemId: SYSTEM_ID,
    prevLsn: prev,
  })
  const out: DecodedRecord[] = []
  for (const c of chunks) {
    d.feed(c)
    for (let r = d.next(); r !== null; r = d.next()) out.push(r)
  }
  return out
}

describe('SyntheticWal', () => {
  it('images: page images of the relation in turn, each the page syntheticHeapPage makes, hole and all', () => {
    const { gen, chunks } = generate('images', 3 * SEG)
    const recs = decodeAll(chunks)
    expect(recs.length).toBe(gen.records)
    expect(recs.at(-1)!.endLsn).toBe(gen.endLsn)
    expect(recs[0].prev).toBe(PREV)
    const fpis = recs.filter((r) => r.rmid === RM_XLOG_ID && r.info === XLOG_FPI)
    expect(fpis.length).toBe(gen.images)
    expect(gen.images).toBeGreaterThan(64 * 3)
    for (const [i, r] of fpis.entries()) {
      const b = r.blocks[0]
      expect([b.relNode, b.blkno]).toEqual([16500, i % 64])
      expect(b.image!.holeLength).toBeGreaterThan(0)
      expect(restoreBlockImage(b.image!).equals(syntheticHeapPage(i % 64, Math.floor(i / 64)))).toBe(true)
    }
    // The latest image of each block, stamped with its record's end, is what GetPage must give back.
    const last = fpis.at(-1)!
    const expected = gen.expectedPage(last.blocks[0].blkno)!
    const stamped = restoreBlockImage(last.blocks[0].image!)
    stamped.writeUInt32LE(Math.floor(last.endLsn / 2 ** 32), 0)
    stamped.writeUInt32LE(last.endLsn % 2 ** 32, 4)
    expect(expected.equals(stamped)).toBe(true)
  })

  it('small: commits of consecutive xids, a CLOG page zeroed as an xid starts one', () => {
    const first = CLOG_XACTS_PER_PAGE - 5000
    const { gen, chunks } = generate('small', SEG / 2, first)
    const recs = decodeAll(chunks)
    expect(recs.length).toBe(gen.records)
    const commits = recs.filter((r) => r.rmid === RM_XACT_ID)
    expect(commits.length).toBe(gen.commits)
    expect(commits.length).toBeGreaterThan(5000)
    expect(commits.map((r) => r.xid)).toEqual(commits.map((_, i) => first + i))
    const zero = recs.filter((r) => r.rmid === RM_CLOG_ID)
    expect(zero.length).toBe(1)
    expect(zero[0].mainData.readInt32LE(0)).toBe(1)
    expect(recs[recs.indexOf(zero[0]) + 1].xid).toBe(CLOG_XACTS_PER_PAGE)
  })

  it('pg_waldump reads every mix record for record, across pages and segments', async () => {
    for (const mix of ['images', 'small', 'mixed'] as const) {
      await withTempDir(async (dir) => {
        // pg_waldump reads a segment's first page whatever it seeks, so the stream starts on that page,
        // behind its long header and an earlier record's tail, as a writer starting there lays them out.
        const start = 3 * SEG + 0x1a8
        const prev = start - 0x60
        const { chunks } = generate(mix, 2 * SEG + 1000, 1000, start, prev)
        const recs = decodeAll(chunks, start, prev)
        const head = new WalWriter({
          startLsn: start,
          segmentSize: SEG,
          timeline: 1,
          systemId: SYSTEM_ID,
          prevLsn: prev,
        })
        const wal = Buffer.concat([head.bytes().subarray(0, 0x1a8), ...chunks])
        for (let s = 0; s * SEG < wal.length; s++) {
          const seg = Buffer.alloc(SEG)
          wal.copy(seg, 0, s * SEG, (s + 1) * SEG)
          await writeFile(path.join(dir, walFileName(1, 3 + s, SEG)), seg)
        }
        expect(wal.length).toBeGreaterThan(2 * SEG)
        const dumped = await runWaldump(dir, formatLsn(start), formatLsn(recs.at(-1)!.endLsn))
        expect(dumped.map((r) => r.lsn)).toEqual(recs.map((r) => formatLsn(r.lsn)))
        expect(dumped.map((r) => r.prev)).toEqual(
          [prev, ...recs.slice(0, -1).map((r) => r.lsn)].map(formatLsn),
        )
        if (mix === 'mixed')
          expect(dumped.filter((r) => r.type === 'COMMIT').length).toBe(
            dumped.filter((r) => r.type === 'FPI').length,
          )
      })
    }
  })
})
