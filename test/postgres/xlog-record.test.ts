import { describe, expect, it } from 'vitest'
import { restoreBlockImage } from '../../src/postgres/block-image.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import { pglzDecompress } from '../../src/postgres/pglz.js'
import { RM_HEAP_ID, RM_XLOG_ID, XLOG_OVERWRITE_CONTRECORD, XLOG_SWITCH } from '../../src/postgres/rmgr.js'
import { WalDecodeError, WalDecoder } from '../../src/postgres/wal-decoder.js'
import {
  decodePageHeader,
  encodePageHeader,
  XLP_FIRST_IS_CONTRECORD,
  XLP_FIRST_IS_OVERWRITE_CONTRECORD,
} from '../../src/postgres/wal-page.js'
import { WalWriter } from '../../src/postgres/wal-writer.js'
import {
  BKPIMAGE_APPLY,
  BKPIMAGE_COMPRESS_PGLZ,
  BKPIMAGE_HAS_HOLE,
  type DecodedRecord,
  decodeRecord,
  encodeRecord,
  recordCrc,
  WalRecordError,
} from '../../src/postgres/xlog-record.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'

const fx = loadWalFixture()
const SEG = 1 << 20

function decodeStream(
  bytes: Buffer,
  startLsn: number,
): { records: DecodedRecord[]; error: WalDecodeError | null } {
  const d = new WalDecoder({ startLsn, segmentSize: SEG })
  d.feed(bytes)
  const records: DecodedRecord[] = []
  try {
    for (let r = d.next(); r; r = d.next()) records.push(r)
    return { records, error: null }
  } catch (err) {
    if (err instanceof WalDecodeError) return { records, error: err }
    throw err
  }
}

describe('XLogRecord encode/decode', () => {
  it('re-encodes every record Postgres wrote byte for byte', () => {
    const { records } = decodeStream(fx.bytes(), parseLsn(fx.start))
    expect(records.length).toBe(fx.records.length)
    for (const rec of records) {
      const again = encodeRecord(rec)
      if (!again.equals(rec.raw)) expect(again.toString('hex')).toBe(rec.raw.toString('hex'))
    }
  })

  it('carries origins, top-level xids, long main data, shared relations and compressed images with holes', () => {
    const { records } = decodeStream(fx.bytes(), parseLsn(fx.start))
    const compressed = records
      .flatMap((r) => r.blocks)
      .find((b) => b.image?.compression === 'pglz' && b.image.holeLength > 0)!
    const page = restoreBlockImage(compressed.image!)
    const mainData = Buffer.alloc(20_000, 0x5a)
    const w = new WalWriter({
      startLsn: 0x2000100,
      segmentSize: SEG,
      timeline: 1,
      systemId: 42n,
      prevLsn: 0x1fff000,
    })
    const spec = {
      xid: 731,
      info: 0x10,
      rmid: RM_HEAP_ID,
      origin: 3,
      toplevelXid: 730,
      mainData,
      blocks: [
        {
          id: 0,
          forkNum: 0,
          spcNode: 1663,
          dbNode: 5,
          relNode: 16384,
          blkno: 7,
          willInit: false,
          image: {
            ...compressed.image!,
            bimgInfo: BKPIMAGE_HAS_HOLE | BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_APPLY,
          },
          data: Buffer.from('block data'),
        },
        {
          id: 2,
          forkNum: 2,
          spcNode: 1663,
          dbNode: 5,
          relNode: 16384,
          blkno: 0,
          willInit: true,
          image: null,
          data: null,
        },
        {
          id: 3,
          forkNum: 0,
          spcNode: 1664,
          dbNode: 0,
          relNode: 1262,
          blkno: 1,
          willInit: false,
          image: null,
          data: null,
        },
      ],
    }
    const first = w.append(spec)
    const second = w.append({
      xid: 0,
      info: XLOG_SWITCH,
      rmid: RM_XLOG_ID,
      blocks: [],
      mainData: Buffer.alloc(0),
    })
    const third = w.append({
      xid: 9,
      info: 0,
      rmid: RM_HEAP_ID,
      blocks: [],
      mainData: Buffer.from([1, 2, 3]),
    })
    expect(third).toBe(0x2000000 + SEG + 40)

    const { records: back, error } = decodeStream(w.bytes(), 0x2000000)
    // The zeros after the last record are where the WAL ends.
    expect(error?.reason).toBe(`invalid record length at ${formatLsn(w.endLsn)}: wanted 24, got 0`)
    expect(back.map((r) => r.lsn)).toEqual([first, second, third])
    const r = back[0]
    expect(r).toMatchObject({
      xid: 731,
      prev: 0x1fff000,
      origin: 3,
      toplevelXid: 730,
      info: 0x10,
      rmid: RM_HEAP_ID,
    })
    expect(r.mainData.equals(mainData)).toBe(true)
    expect(r.totLen).toBeGreaterThan(2 * 8192)
    expect(
      r.blocks.map((b) => [b.id, b.forkNum, b.spcNode, b.dbNode, b.relNode, b.blkno, b.willInit]),
    ).toEqual([
      [0, 0, 1663, 5, 16384, 7, false],
      [2, 2, 1663, 5, 16384, 0, true],
      [3, 0, 1664, 0, 1262, 1, false],
    ])
    expect(r.blocks[1].flags & 0x80).toBe(0x80) // BKPBLOCK_SAME_REL
    expect(r.blocks[0].data?.toString()).toBe('block data')
    expect(r.blocks[0].image?.apply).toBe(true)
    expect(restoreBlockImage(r.blocks[0].image!)).toEqual(page)
    expect(r.fpiLen).toBe(compressed.image!.data.length)
    expect(back[1].prev).toBe(first)
    expect(back[2].prev).toBe(second)
    // The writer marks the bytes before its first record as a continuation, for readers that start at the page.
    expect(decodePageHeader(w.bytes()).info & XLP_FIRST_IS_CONTRECORD).toBe(XLP_FIRST_IS_CONTRECORD)
    expect(
      pglzDecompress(compressed.image!.data, 8192 - compressed.image!.holeLength).length,
    ).toBeGreaterThan(0)
  })

  it("rejects records that break Postgres' cross-checks", () => {
    const base = { xid: 1, prev: 0, info: 0, rmid: RM_HEAP_ID, mainData: Buffer.from([1]) }
    const block = {
      id: 0,
      forkNum: 0,
      spcNode: 1,
      dbNode: 2,
      relNode: 3,
      blkno: 4,
      willInit: false,
      image: null,
      data: null,
    }
    const cases: [Buffer, RegExp][] = []
    const outOfOrder = encodeRecord({
      ...base,
      blocks: [
        { ...block, id: 1 },
        { ...block, id: 2, relNode: 9 },
      ],
    })
    outOfOrder[24 + 4 + 12 + 4] = 0 // second block id 2 -> 0
    cases.push([outOfOrder, /out-of-order block_id 0/])
    const noData = encodeRecord({ ...base, blocks: [block] })
    noData[25] |= 0x20 // BKPBLOCK_HAS_DATA without a length
    cases.push([noData, /BKPBLOCK_HAS_DATA set, but no data included/])
    const badId = encodeRecord({ ...base, blocks: [block] })
    badId[24] = 40
    cases.push([badId, /invalid block_id 40/])
    const short = encodeRecord({ ...base, blocks: [block] })
    short.writeUInt8(200, short.length - 2) // main data length beyond the record
    cases.push([short, /record with invalid length/])
    for (const [raw, reason] of cases) {
      // Fix up the CRC, so that the structural check is what fails.
      raw.writeUInt32LE(recordCrc(raw), 20)
      expect(() => decodeRecord(raw, 0x1000, 0x1100)).toThrow(WalRecordError)
      expect(() => decodeRecord(raw, 0x1000, 0x1100)).toThrow(reason)
    }
  })

  it('abandons a record whose continuation was overwritten and reads the OVERWRITE_CONTRECORD record', () => {
    const w = new WalWriter({ startLsn: 0x3000028, segmentSize: SEG, timeline: 1, systemId: 1n, prevLsn: 0 })
    const small = w.append({ xid: 1, info: 0, rmid: RM_HEAP_ID, blocks: [], mainData: Buffer.alloc(100, 1) })
    const broken = w.append({
      xid: 2,
      info: 0,
      rmid: RM_HEAP_ID,
      blocks: [],
      mainData: Buffer.alloc(12_000, 2),
    })
    const bytes = Buffer.from(w.bytes())
    // The second page now holds a different record instead of the rest of `broken`.
    const page = 0x3002000 - 0x3000000
    encodePageHeader(
      { magic: 0xd110, info: XLP_FIRST_IS_OVERWRITE_CONTRECORD, timeline: 1, pageAddr: 0x3002000, remLen: 0 },
      bytes,
      page,
    )
    const overwrite = encodeRecord({
      xid: 0,
      prev: small,
      info: XLOG_OVERWRITE_CONTRECORD,
      rmid: RM_XLOG_ID,
      blocks: [],
      mainData: Buffer.alloc(16),
    })
    overwrite.copy(bytes, page + 24)
    bytes.fill(0, page + 24 + overwrite.length, page + 8192)
    const { records, error } = decodeStream(bytes, 0x3000000)
    expect(records.map((r) => formatLsn(r.lsn))).toEqual([formatLsn(small), formatLsn(0x3002018)])
    expect(records[1].info).toBe(XLOG_OVERWRITE_CONTRECORD)
    expect(broken).toBeGreaterThan(small)
    expect(error?.reason).toMatch(/invalid record length/)
  })
})
