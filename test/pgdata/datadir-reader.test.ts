/** The datadir reader over a timeline written through the mapping's keys, at two LSNs. */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import type { Write } from '../../src/engine/timeline.js'
import {
  DBDIR_KEY,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  encodeU32Set,
  relBlockKey,
  relDirKey,
  relSizeKey,
  SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
} from '../../src/pgdata/datadir-mapping.js'
import { DatadirReader } from '../../src/pgdata/datadir-reader.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-datadir-reader-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const rel = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }
const fsm = { ...rel, forkNum: 1 }
const page = (fill: number) => Buffer.alloc(8192, fill)
const zero = Buffer.alloc(8192)

describe('DatadirReader', () => {
  it('reads sizes, pages (zeros where never written or past the end), database sizes and SLRU segments', async () => {
    const repo = await Repository.open(dir, { background: false })
    const tl = repo.createTenant().createTimeline(0x100)
    const at = (lsn: number, entries: [Buffer, Buffer][]): Write[] =>
      entries.map(([key, bytes]) => ({ key, lsn, value: { kind: 'image', page: bytes } }))
    tl.ingest(
      at(0x108, [
        [DBDIR_KEY, encodeDbDir([{ spcNode: 1663, dbNode: 5, hasRelmap: true }])],
        [relDirKey(1663, 5), encodeRelDir([{ relNode: 16384, forkNum: 0 }])],
        [relSizeKey(rel), encodeSize(3)],
        [relBlockKey(rel, 0), page(1)],
        [relBlockKey(rel, 2), page(3)],
        [slruDirKey(SlruKind.Clog), encodeU32Set([0])],
        [slruSegSizeKey(SlruKind.Clog, 0), encodeSize(2)],
        [slruBlockKey(SlruKind.Clog, 0, 1), page(7)],
      ]),
      0x108,
    )
    tl.ingest(
      at(0x110, [
        [
          relDirKey(1663, 5),
          encodeRelDir([
            { relNode: 16384, forkNum: 0 },
            { relNode: 16384, forkNum: 1 },
          ]),
        ],
        [relSizeKey(fsm), encodeSize(1)],
        [relSizeKey(rel), encodeSize(4)],
        [relBlockKey(rel, 0), page(9)],
      ]),
      0x110,
    )

    const before = new DatadirReader(tl, 0x108)
    expect(before.databases()).toEqual([{ spcNode: 1663, dbNode: 5, hasRelmap: true }])
    expect(before.relations(1663, 5)).toEqual([{ relNode: 16384, forkNum: 0 }])
    expect(before.relations(1663, 6)).toBeNull()
    expect(before.relExists(rel)).toBe(true)
    expect(before.relSize(rel)).toBe(3)
    expect(before.page(rel, 0)).toEqual(page(1))
    expect(before.page(rel, 1)).toEqual(zero)
    expect(before.page(rel, 2)).toEqual(page(3))
    expect(before.page(rel, 3)).toEqual(zero)
    expect(before.relExists(fsm)).toBe(false)
    expect(before.relSize(fsm)).toBeNull()
    expect(before.page(fsm, 0)).toEqual(zero)
    expect(before.dbSize(1663, 5)).toBe(3 * 8192)
    expect(before.dbSize(1663, 6)).toBe(0)
    expect(before.slruSegments(SlruKind.Clog)).toEqual([0])
    expect(before.slruSegmentSize(SlruKind.Clog, 0)).toBe(2)
    expect(before.slruSegment(SlruKind.Clog, 0)).toEqual(Buffer.concat([zero, page(7)]))
    expect(before.slruSegment(SlruKind.Clog, 1)).toBeNull()
    expect(before.slruSegments(SlruKind.MultiXactMembers)).toBeNull()
    expect(before.twoPhaseXids()).toBeNull()
    expect(before.controlFile()).toBeNull()

    const after = new DatadirReader(tl, 0x110)
    expect(after.relSize(rel)).toBe(4)
    expect(after.page(rel, 0)).toEqual(page(9))
    expect(after.page(rel, 2)).toEqual(page(3))
    expect(after.relSize(fsm)).toBe(1)
    expect(after.dbSize(1663, 5)).toBe(5 * 8192)
    await repo.close()
  })
})
