/**
 * Our WAL decoder against pg_waldump and against the pages Postgres wrote, for every wal_compression.
 */
import { open } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pageAfterRecord, restoreBlockImage } from '../../src/postgres/block-image.js'
import {
  BLCKSZ,
  getPageLsn,
  LP_NORMAL,
  lineCount,
  readItemId,
  readPageHeader,
} from '../../src/postgres/data-page.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import { blockLocation } from '../../src/postgres/relfile.js'
import { RM_HEAP2_ID, RM_SEQ_ID, XLOG_HEAP2_VISIBLE } from '../../src/postgres/rmgr.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import {
  type BlockRef,
  type DecodedRecord,
  FORK_NAMES,
  INIT_FORKNUM,
  MAIN_FORKNUM,
} from '../../src/postgres/xlog-record.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'
import { asWaldumpRecord, runWaldump } from '../harness/waldump.js'
import { runVariedWorkload } from '../harness/workload.js'

const COMPRESSIONS = (process.env.ZENITH_TEST_WAL_COMPRESSION ?? 'off,lz4,pglz,zstd').split(',')

describe.each(COMPRESSIONS)('WAL written with wal_compression=%s', (compression) => {
  let pg: PgCluster
  let start: string
  let end: string

  beforeAll(async () => {
    pg = await startPostgres({
      name: `wal-${compression}`,
      settings: {
        wal_consistency_checking: 'all',
        wal_compression: compression,
        wal_keep_size: '4GB',
        max_prepared_transactions: 5,
      },
    })
    const insertLsn = async () =>
      (await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn'))[0].lsn
    start = await insertLsn()
    await runVariedWorkload(pg)
    end = await insertLsn()
    await pg.stop()
  })

  afterAll(async () => {
    await pg?.destroy()
  })

  it('decodes every record exactly as pg_waldump does', async () => {
    const expected = await runWaldump(pg.walDir, start, end)
    const { reader } = await openWalDir(pg.walDir, { start: parseLsn(start), end: parseLsn(end) })
    const ours: DecodedRecord[] = []
    for await (const rec of reader.records()) ours.push(rec)
    expect(reader.stop?.kind).toBe('end-reached')
    expect(ours.length).toBe(expected.length)
    expect(expected.length).toBeGreaterThan(1000)

    for (let i = 0; i < ours.length; i++) {
      const got = asWaldumpRecord(ours[i])
      // Comparing strings first keeps the loop fast; toEqual shows the difference when there is one.
      if (JSON.stringify(got) !== JSON.stringify(expected[i])) expect(got).toEqual(expected[i])
    }
    const compressed = ours.flatMap((r) => r.blocks).filter((b) => b.image && b.image.compression !== 'none')
    if (compression === 'off') expect(compressed.length).toBe(0)
    else expect(compressed.length).toBeGreaterThan(100)
  })

  it('restores images equal to the pages in the stopped cluster', async () => {
    // Decode to the end of WAL, so the newest image of each block is its final state.
    const { reader } = await openWalDir(pg.walDir, { start: parseLsn(start) })
    const last = new Map<string, { rec: DecodedRecord; block: BlockRef }>()
    let images = 0
    for await (const rec of reader.records()) {
      for (const block of rec.blocks) {
        if (!block.image) continue
        expect(restoreBlockImage(block.image).length).toBe(BLCKSZ)
        images++
        // VM bits are also cleared by heap records without a VM image, and FSM pages are not WAL-logged.
        if (block.forkNum !== MAIN_FORKNUM && block.forkNum !== INIT_FORKNUM) continue
        last.set(`${block.spcNode}/${block.dbNode}/${block.relNode}/${block.forkNum}/${block.blkno}`, {
          rec,
          block,
        })
      }
    }
    expect(reader.stop?.kind).toBe('invalid')

    let compared = 0
    const mismatches: string[] = []
    for (const { rec, block } of last.values()) {
      // Sequences log 32 values ahead: WAL holds the advanced tuple, the buffer keeps the current one.
      if (rec.rmid === RM_SEQ_ID) continue
      const disk = await readBlock(pg.datadir, block)
      if (!disk) continue // the relation was dropped or truncated later
      const ours = pageAfterRecord(rec, block)
      // Postgres does not stamp the heap page of a VISIBLE record when checksums are off, and a sorted
      // GiST build writes its pages with the placeholder LSN 1 before logging them.
      const unstamped =
        (rec.rmid === RM_HEAP2_ID && (rec.info & 0x70) === XLOG_HEAP2_VISIBLE) ||
        getPageLsn(disk) === GIST_BUILD_LSN
      if (unstamped) expect(getPageLsn(ours)).toBeGreaterThanOrEqual(getPageLsn(disk))
      const diff = firstDifference(maskPage(ours, block, unstamped), maskPage(disk, block, unstamped))
      compared++
      if (diff >= 0) {
        mismatches.push(
          `${block.spcNode}/${block.dbNode}/${block.relNode} ${FORK_NAMES[block.forkNum]} blk ${block.blkno} ` +
            `(last record ${formatLsn(rec.lsn)} rmid ${rec.rmid} info ${rec.info.toString(16)}) differs at byte ${diff}` +
            ` (ours ${ours.subarray(diff, diff + 8).toString('hex')}, disk ${disk.subarray(diff, diff + 8).toString('hex')})`,
        )
      }
    }
    expect(images).toBeGreaterThan(1000)
    expect(compared).toBeGreaterThan(300)
    expect(mismatches).toEqual([])
  })
})

async function readBlock(datadir: string, block: BlockRef): Promise<Buffer | null> {
  const { path: rel, offset } = blockLocation(block, block.forkNum, block.blkno)
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(path.join(datadir, rel), 'r')
  } catch {
    return null
  }
  try {
    const page = Buffer.alloc(BLCKSZ)
    const { bytesRead } = await fh.read(page, 0, BLCKSZ, offset)
    return bytesRead === BLCKSZ ? page : null
  } finally {
    await fh.close()
  }
}

const GIST_BUILD_LSN = 1
const HEAP_HINT_BITS = 0x0f00 // HEAP_XMIN_COMMITTED | XMIN_INVALID | XMAX_COMMITTED | XMAX_INVALID

/**
 * Hides what Postgres changes without WAL, as its own consistency checks do: the hole the image left out,
 * tuple hint bits on heap pages, and pd_lsn where Postgres leaves it unstamped.
 */
function maskPage(page: Buffer, block: BlockRef, maskLsn: boolean): Buffer {
  const p = Buffer.from(page)
  const img = block.image!
  p.fill(0, img.holeOffset, img.holeOffset + img.holeLength)
  if (maskLsn) p.fill(0, 0, 8)
  const hdr = readPageHeader(p)
  if (hdr.upper !== 0 && hdr.special === BLCKSZ) {
    for (let off = 1; off <= lineCount(p); off++) {
      const item = readItemId(p, off)
      if (item.flags !== LP_NORMAL || item.offset + 22 > BLCKSZ) continue
      const infomask = p.readUInt16LE(item.offset + 20)
      p.writeUInt16LE(infomask & ~HEAP_HINT_BITS, item.offset + 20)
    }
  }
  return p
}

function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}
