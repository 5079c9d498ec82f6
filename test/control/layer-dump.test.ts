import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dumpLayer } from '../../src/control/layer-dump.js'
import { KEY_MAX, KEY_MIN, keyToHex } from '../../src/engine/key.js'
import { LayerCorruptionError, LayerFileReader, LayerFileWriter } from '../../src/engine/layer-file.js'
import { PAGE_SIZE, PageCache } from '../../src/engine/page-cache.js'
import { encodeValue, storedForm, type Value } from '../../src/engine/value.js'
import { ZenithError } from '../../src/lib/errors.js'
import {
  encodeSize,
  encodeU32Set,
  type RelTag,
  relBlockKey,
  relSizeKey,
  SlruKind,
  slruBlockKey,
  slruDirKey,
} from '../../src/pgdata/datadir-mapping.js'
import { PG_WAL_RECORD_KIND } from '../../src/pgdata/value-describe.js'
import { setPageLsn } from '../../src/postgres/data-page.js'
import { RM_HEAP_ID, XLOG_HEAP_INSERT, XLOG_HEAP_OPMASK } from '../../src/postgres/rmgr.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import type { DecodedRecord } from '../../src/postgres/xlog-record.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'

const TENANT = '0123456789abcdef0123456789abcdef'
const TIMELINE = 'fedcba9876543210fedcba9876543210'
const REL: RelTag = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }
const OTHER: RelTag = { ...REL, relNode: 16390 }

const root = mkdtempSync(path.join(os.tmpdir(), 'zenith-layer-dump-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** The first Heap INSERT of the committed fixture: a record real Postgres wrote. */
async function heapInsert(): Promise<DecodedRecord> {
  const { reader } = await openWalDir(loadWalFixture().dir)
  for await (const rec of reader.records()) {
    if (
      rec.rmid === RM_HEAP_ID &&
      (rec.info & XLOG_HEAP_OPMASK) === XLOG_HEAP_INSERT &&
      rec.blocks.length > 0
    ) {
      return { ...rec, raw: Buffer.from(rec.raw), blocks: rec.blocks.map((b) => ({ ...b })) }
    }
  }
  throw new Error('the fixture has no Heap INSERT')
}

function page(lsn: number): Buffer {
  const p = Buffer.alloc(PAGE_SIZE)
  setPageLsn(p, lsn)
  return p
}

let file: string
let insert: DecodedRecord

function insertRel(): RelTag {
  const b = insert.blocks[0]
  return { spcNode: b.spcNode, dbNode: b.dbNode, relNode: b.relNode, forkNum: b.forkNum }
}

/** One delta layer holding an entry of every kind the dump names. */
beforeAll(async () => {
  insert = await heapInsert()
  const ins = insert.blocks[0]
  const insRel = insertRel()
  const entries: [Buffer, number, Value][] = [
    [relBlockKey(REL, 0), 0x1500000, { kind: 'image', page: page(0x14fff00) }],
    [relBlockKey(REL, 0), 0x1500100, { kind: 'image', page: page(0x1500100) }],
    [relBlockKey(REL, 1), 0x1500200, { kind: 'image', page: page(0x1500200) }],
    [relSizeKey(REL), 0x1500200, { kind: 'image', page: encodeSize(2) }],
    [
      relBlockKey(OTHER, 7),
      0x1500300,
      { kind: 'record', recordKind: 77, willInit: false, data: Buffer.alloc(5) },
    ],
    [
      relBlockKey(insRel, ins.blkno),
      0x1500400,
      { kind: 'record', recordKind: PG_WAL_RECORD_KIND, willInit: false, data: insert.raw },
    ],
    [slruDirKey(SlruKind.Clog), 0x1500500, { kind: 'image', page: encodeU32Set([0, 1]) }],
    [slruBlockKey(SlruKind.Clog, 1, 3), 0x1500600, { kind: 'image', page: Buffer.alloc(PAGE_SIZE, 0x55) }],
  ]
  entries.sort((a, b) => Buffer.compare(a[0], b[0]) || a[1] - b[1])
  const dir = path.join(root, 'layers')
  mkdirSync(dir)
  const w = new LayerFileWriter({
    dir,
    kind: 'delta',
    tenantId: TENANT,
    timelineId: TIMELINE,
    keyStart: KEY_MIN,
    keyEnd: KEY_MAX,
    lsnStart: 0x1500000,
    lsnEnd: 0x1500601,
  })
  for (const [key, lsn, v] of entries) {
    const { bytes, image } = storedForm(encodeValue(v))
    w.add(key, lsn, bytes, v.kind === 'image' || v.willInit, image)
  }
  file = w.finish().path
})

describe('zenith layer dump', () => {
  it('sums up the header and index', () => {
    const { summary: s } = dumpLayer(root, { layer: file })
    expect(s).toMatchObject({
      name: path.basename(file),
      format_version: 2,
      kind: 'delta',
      tenant_id: TENANT,
      timeline_id: TIMELINE,
      key_start: keyToHex(KEY_MIN),
      key_end: keyToHex(KEY_MAX),
      key_range: 'min .. max',
      lsn_start: '0/1500000',
      lsn_end: '0/1500601',
      entries: 8,
      keys: 7,
      images: 6,
      records: 2,
      will_init: 6,
      compression: 'none',
      block_size: 8192,
      index_height: 1,
      index_blocks: 1,
      index_bytes: 8192,
      matching_entries: 8,
      omitted_entries: 0,
    })
    expect(s.file_size).toBe(s.blocks * 8192)
    expect(s.blocks).toBe(1 + s.data_blocks + s.index_blocks)
  })

  it('describes every entry: key, LSN, kind, will_init, size, and what the value holds', () => {
    const { entries } = dumpLayer(root, { layer: file })
    const ins = insert.blocks[0]
    const insKey = relBlockKey(insertRel(), ins.blkno)
    const blocks = `${insert.blocks.length} block${insert.blocks.length === 1 ? '' : 's'}`
    const expected: [Buffer, string, string, boolean, number, string][] = [
      [relBlockKey(REL, 0), '0/1500000', 'image', true, 8192, 'page, pd_lsn 0/14FFF00'],
      [relBlockKey(REL, 0), '0/1500100', 'image', true, 8192, 'page, pd_lsn 0/1500100'],
      [relBlockKey(REL, 1), '0/1500200', 'image', true, 8192, 'page, pd_lsn 0/1500200'],
      [relSizeKey(REL), '0/1500200', 'image', true, 4, 'size 2 blocks'],
      [relBlockKey(OTHER, 7), '0/1500300', 'record', false, 8, 'record kind 77, not a WAL record'],
      [
        insKey,
        '0/1500400',
        'record',
        false,
        3 + insert.raw.length,
        `Heap INSERT, tx ${insert.xid}, ${blocks}`,
      ],
      [slruDirKey(SlruKind.Clog), '0/1500500', 'image', true, 13, '2 segments'],
      [slruBlockKey(SlruKind.Clog, 1, 3), '0/1500600', 'image', true, 8192, 'pg_xact page'],
    ]
    expected.sort((a, b) => Buffer.compare(a[0], b[0]) || a[1].localeCompare(b[1]))
    expect(entries.map((e) => [e.key_hex, e.lsn, e.kind, e.will_init, e.size, e.description])).toEqual(
      expected.map(([k, ...rest]) => [keyToHex(k), ...rest]),
    )
    const byHex = new Map(entries.map((e) => [e.key_hex, e.key]))
    expect(byHex.get(keyToHex(relBlockKey(REL, 1)))).toBe('rel 1663/5/16384 blk 1')
    expect(byHex.get(keyToHex(relSizeKey(REL)))).toBe('rel 1663/5/16384 size')
    expect(byHex.get(keyToHex(insKey))).toBe(
      `rel ${ins.spcNode}/${ins.dbNode}/${ins.relNode} blk ${ins.blkno}`,
    )
    expect(byHex.get(keyToHex(slruDirKey(SlruKind.Clog)))).toBe('slru pg_xact dir')
    expect(byHex.get(keyToHex(slruBlockKey(SlruKind.Clog, 1, 3)))).toBe('slru pg_xact seg 1 blk 3')
    // Only a Postgres WAL record has an rmgr to name.
    expect(entries.filter((e) => e.rmgr !== undefined)).toEqual([
      expect.objectContaining({ key_hex: keyToHex(insKey), rmgr: 'Heap', record_type: 'INSERT' }),
    ])
  })

  it('filters by --rel and --key, and --limit says how many more there are', () => {
    const rel = dumpLayer(root, { layer: file, rel: '1663/5/16384' })
    expect(rel.entries.map((e) => e.key)).toEqual([
      'rel 1663/5/16384 blk 0',
      'rel 1663/5/16384 blk 0',
      'rel 1663/5/16384 blk 1',
      'rel 1663/5/16384 size',
    ])
    expect(rel.summary).toMatchObject({ entries: 8, matching_entries: 4, omitted_entries: 0 })
    expect(dumpLayer(root, { layer: file, rel: '1663/5/16384.vm' }).entries).toEqual([])

    const key = dumpLayer(root, { layer: file, key: keyToHex(relBlockKey(REL, 0)) })
    expect(key.entries.map((e) => e.lsn)).toEqual(['0/1500000', '0/1500100'])
    expect(key.summary.matching_entries).toBe(2)

    const limited = dumpLayer(root, { layer: file, limit: 3 })
    expect(limited.entries).toHaveLength(3)
    expect(limited.summary).toMatchObject({ matching_entries: 8, omitted_entries: 5 })
    const none = dumpLayer(root, { layer: file, rel: '1663/5/16384', limit: 0 })
    expect(none.entries).toEqual([])
    expect(none.summary).toMatchObject({ matching_entries: 4, omitted_entries: 4 })
  })

  it('refuses bad input with errors that say what is wrong', () => {
    const fail = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        expect(err).toBeInstanceOf(ZenithError)
        return err as ZenithError
      }
      throw new Error('expected a failure')
    }
    const both = fail(() => dumpLayer(root, { layer: file, key: keyToHex(KEY_MIN), rel: '1663/5/1' }))
    expect(both.kind).toBe('user_input')
    expect(both.message).toMatch(/--key and --rel/)
    expect(fail(() => dumpLayer(root, { layer: file, key: 'abc' })).message).toMatch(/36 hex digits/)
    expect(fail(() => dumpLayer(root, { layer: file, rel: '1663/5' })).message).toMatch(/invalid relation/)

    const missing = fail(() => dumpLayer(root, { layer: path.join(root, 'nope') }))
    expect(missing.kind).toBe('not_found')
    expect(missing.message).toMatch(/does not exist/)

    const notLayer = path.join(root, 'notes.txt')
    writeFileSync(notLayer, 'hello')
    const named = fail(() => dumpLayer(root, { layer: notLayer }))
    expect(named.kind).toBe('user_input')
    expect(named.message).toMatch(/is not a layer file: its name/)

    // A file named like a layer that holds something else: the magic says so before any checksum.
    const foreignDir = path.join(root, 'foreign')
    mkdirSync(foreignDir)
    const foreign = path.join(foreignDir, path.basename(file))
    writeFileSync(foreign, Buffer.alloc(3 * PAGE_SIZE, 0x41))
    const bad = fail(() => dumpLayer(root, { layer: foreign }))
    expect(bad.kind).toBe('corruption')
    expect(bad.message).toMatch(/not a zenith layer file/)
  })

  it('looks a bare layer name up in the branch timeline directory, and says where it looked', () => {
    const repo = path.join(root, 'repo')
    const tlDir = path.join(repo, 'pageserver', 'tenants', TENANT, 'timelines', TIMELINE)
    mkdirSync(tlDir, { recursive: true })
    writeFileSync(path.join(tlDir, path.basename(file)), readFileSync(file))
    writeFileSync(
      path.join(repo, 'config'),
      `pg_distrib_dir = "/usr/lib/postgresql/15"\ndefault_tenant_id = "${TENANT}"\n\n[branches.${TENANT}]\nmain = "${TIMELINE}"\n`,
    )
    const byName = dumpLayer(repo, { layer: path.basename(file) })
    expect(byName.summary.file).toBe(path.join(tlDir, path.basename(file)))
    expect(byName.entries).toEqual(dumpLayer(root, { layer: file }).entries)

    const other = path.basename(file).replace(/__.*/, '__0000000001500000-0000000001500002')
    try {
      dumpLayer(repo, { layer: other })
      throw new Error('expected not_found')
    } catch (err) {
      expect((err as ZenithError).kind).toBe('not_found')
      expect((err as Error).message).toBe(`no layer ${other} in branch main: looked in ${tlDir}`)
    }
    expect(() => dumpLayer(repo, { layer: path.basename(file), branch: 'dev' })).toThrow(
      /unknown branch "dev"/,
    )
  })

  it('fails on a corrupt block as the engine reports it: the file and the offset', () => {
    const damagedDir = path.join(root, 'damaged')
    mkdirSync(damagedDir)
    const damaged = path.join(damagedDir, path.basename(file))
    const bytes = readFileSync(file)
    // A byte of the first data block: the CRC of the value there, kept in the index, catches the flip.
    bytes[PAGE_SIZE + 100] ^= 0x10
    writeFileSync(damaged, bytes)
    let caught: unknown
    try {
      dumpLayer(root, { layer: damaged })
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(LayerCorruptionError)
    const err = caught as LayerCorruptionError
    expect(err.kind).toBe('corruption')
    expect(err.file).toBe(damaged)
    expect(err.offset).toBe(PAGE_SIZE)
    // The first value in key order starts the first data block: it is the one whose CRC fails.
    const first = dumpLayer(root, { layer: file, limit: 1 }).entries[0]
    expect(err.message).toBe(
      `layer file ${damaged}: the ${first.size}-byte value at offset ${PAGE_SIZE} fails its CRC-32C check`,
    )
    // The intact file still reads: the reader of the original is unaffected.
    expect(LayerFileReader.open(file, new PageCache(4)).summary.entries).toBe(8)
  })
})
