import { describe, expect, it } from 'vitest'
import { KEY_MIN, rangeContains } from '../../src/engine/key.js'
import {
  CHECKPOINT_KEY,
  CONTROLFILE_KEY,
  classifyKey,
  DatadirKeyError,
  DBDIR_KEY,
  DirectoryFormatError,
  databaseRange,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  decodeU32Set,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  encodeU32Set,
  REPLORIGIN_DIR_KEY,
  relBlockKey,
  relDirKey,
  relForkRange,
  relmapKey,
  relSizeKey,
  replOriginKey,
  SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
  TBLSPC_DIR_KEY,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from '../../src/pgdata/datadir-mapping.js'

const rel = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }

describe('datadir mapping', () => {
  it('classifies every kind of key it makes', () => {
    const cases: [Buffer, unknown][] = [
      [DBDIR_KEY, { kind: 'dbdir' }],
      [relmapKey(1664, 0), { kind: 'relmap', spcNode: 1664, dbNode: 0 }],
      [relDirKey(1663, 5), { kind: 'reldir', spcNode: 1663, dbNode: 5 }],
      [relBlockKey(rel, 7), { kind: 'rel-block', rel, blkno: 7 }],
      [relSizeKey({ ...rel, forkNum: 2 }), { kind: 'rel-size', rel: { ...rel, forkNum: 2 } }],
      [slruDirKey(SlruKind.Clog), { kind: 'slru-dir', slru: SlruKind.Clog }],
      [slruBlockKey(SlruKind.MultiXactOffsets, 3, 31), { kind: 'slru-block', slru: 2, segno: 3, blkno: 31 }],
      [slruSegSizeKey(SlruKind.MultiXactMembers, 9), { kind: 'slru-size', slru: 1, segno: 9 }],
      [TWOPHASE_DIR_KEY, { kind: 'twophase-dir' }],
      [twoPhaseFileKey(731), { kind: 'twophase-file', xid: 731 }],
      [CONTROLFILE_KEY, { kind: 'controlfile' }],
      [CHECKPOINT_KEY, { kind: 'checkpoint' }],
      [slruBlockKey(SlruKind.CommitTs, 1, 4), { kind: 'slru-block', slru: 3, segno: 1, blkno: 4 }],
      [REPLORIGIN_DIR_KEY, { kind: 'replorigin-dir' }],
      [replOriginKey(65534), { kind: 'replorigin', roident: 65534 }],
      [TBLSPC_DIR_KEY, { kind: 'tblspc-dir' }],
    ]
    for (const [k, want] of cases) expect(classifyKey(k)).toEqual(want)
    expect(DBDIR_KEY.equals(KEY_MIN)).toBe(true)
  })

  it('orders a database as the layout promises', () => {
    const ordered = [
      relmapKey(1663, 5),
      relDirKey(1663, 5),
      relBlockKey(rel, 0),
      relBlockKey(rel, 0xfffffffe),
      relSizeKey(rel),
      relBlockKey({ ...rel, forkNum: 1 }, 0),
      relSizeKey({ ...rel, forkNum: 1 }),
      relBlockKey({ ...rel, relNode: 16385 }, 0),
    ]
    for (let i = 1; i < ordered.length; i++) expect(Buffer.compare(ordered[i - 1], ordered[i])).toBe(-1)
    const db = databaseRange(1663, 5)
    for (const k of ordered) expect(rangeContains(db, k)).toBe(true)
    expect(rangeContains(db, relmapKey(1663, 4))).toBe(false)
    expect(rangeContains(db, relBlockKey({ ...rel, dbNode: 6 }, 0))).toBe(false)
    const fork = relForkRange(rel)
    expect(rangeContains(fork, relBlockKey(rel, 12345))).toBe(true)
    expect(rangeContains(fork, relSizeKey(rel))).toBe(true)
    expect(rangeContains(fork, relSizeKey({ ...rel, forkNum: 1 }))).toBe(false)
  })

  it('refuses keys outside the layout and reserved numbers', () => {
    const odd = Buffer.from(relDirKey(1663, 5))
    odd[17] = 2
    expect(() => classifyKey(odd)).toThrow(DatadirKeyError)
    const foreign = Buffer.alloc(18, 0)
    foreign[0] = 0x42
    expect(() => classifyKey(foreign)).toThrow(/not part of the datadir layout/)
    expect(() => relBlockKey({ ...rel, relNode: 0 }, 1)).toThrow(RangeError)
    expect(() => relBlockKey(rel, 0xffffffff)).toThrow(RangeError)
    expect(() => slruBlockKey(SlruKind.Clog, 0, 32)).toThrow(RangeError)
    expect(() => replOriginKey(0)).toThrow(RangeError)
    const noOrigin = Buffer.from(REPLORIGIN_DIR_KEY)
    noOrigin.writeUInt32BE(0x10000, 14)
    expect(() => classifyKey(noOrigin)).toThrow(DatadirKeyError)
  })

  it('encodes directories canonically and refuses damaged ones', () => {
    const dbs = [
      { spcNode: 1663, dbNode: 16400, hasRelmap: true },
      { spcNode: 1663, dbNode: 1, hasRelmap: true },
      { spcNode: 1664, dbNode: 0, hasRelmap: false },
    ]
    const encoded = encodeDbDir(dbs)
    expect(encodeDbDir([...dbs].reverse())).toEqual(encoded)
    expect(decodeDbDir(encoded)).toEqual([dbs[1], dbs[0], dbs[2]])
    const rels = [
      { relNode: 16390, forkNum: 0 },
      { relNode: 1259, forkNum: 2 },
      { relNode: 1259, forkNum: 0 },
    ]
    expect(decodeRelDir(encodeRelDir(rels))).toEqual([rels[2], rels[1], rels[0]])
    expect(decodeU32Set(encodeU32Set([5, 1, 5, 3]), 'segments')).toEqual([1, 3, 5])
    expect(decodeSize(encodeSize(131072))).toBe(131072)
    expect(() => decodeRelDir(encodeRelDir(rels).subarray(0, 10))).toThrow(DirectoryFormatError)
    expect(() => decodeDbDir(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/unknown format/)
  })
})
