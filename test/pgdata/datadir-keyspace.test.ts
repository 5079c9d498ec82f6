import { describe, expect, it } from 'vitest'
import { datadirKeyFilter } from '../../src/pgdata/datadir-keyspace.js'
import {
  CHECKPOINT_KEY,
  DBDIR_KEY,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  encodeU32Set,
  relBlockKey,
  relDirKey,
  relmapKey,
  relSizeKey,
  SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from '../../src/pgdata/datadir-mapping.js'

describe('datadir key space', () => {
  it('keeps the keys directories and sizes still name, and drops the rest', () => {
    const rel = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }
    const values = new Map<string, Buffer>([
      [DBDIR_KEY.toString('hex'), encodeDbDir([{ spcNode: 1663, dbNode: 5, hasRelmap: true }])],
      [relDirKey(1663, 5).toString('hex'), encodeRelDir([{ relNode: 16384, forkNum: 0 }])],
      [relSizeKey(rel).toString('hex'), encodeSize(3)],
      [slruDirKey(SlruKind.Clog).toString('hex'), encodeU32Set([0])],
      [slruSegSizeKey(SlruKind.Clog, 0).toString('hex'), encodeSize(2)],
      [TWOPHASE_DIR_KEY.toString('hex'), encodeU32Set([900])],
    ])
    const exists = datadirKeyFilter((k) => values.get(k.toString('hex')) ?? null)
    expect(exists(relBlockKey(rel, 2))).toBe(true)
    expect(exists(relSizeKey(rel))).toBe(true)
    expect(exists(relBlockKey(rel, 3))).toBe(false) // truncated away
    expect(exists(relBlockKey({ ...rel, relNode: 16385 }, 0))).toBe(false) // dropped relation
    expect(exists(relBlockKey({ ...rel, forkNum: 2 }, 0))).toBe(false) // fork not in the directory
    expect(exists(relBlockKey({ ...rel, dbNode: 6 }, 0))).toBe(false) // dropped database
    expect(exists(relmapKey(1663, 5))).toBe(true)
    expect(exists(relmapKey(1663, 6))).toBe(false)
    expect(exists(relmapKey(1664, 0))).toBe(true)
    expect(exists(slruBlockKey(SlruKind.Clog, 0, 1))).toBe(true)
    expect(exists(slruBlockKey(SlruKind.Clog, 0, 2))).toBe(false)
    expect(exists(slruBlockKey(SlruKind.Clog, 1, 0))).toBe(false)
    expect(exists(twoPhaseFileKey(900))).toBe(true)
    expect(exists(twoPhaseFileKey(901))).toBe(false)
    expect(exists(CHECKPOINT_KEY)).toBe(true)
  })
})
