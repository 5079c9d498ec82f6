import { describe, expect, it } from 'vitest'
import { KEY_MAX, KEY_MIN, nextKey } from '../../src/engine/key.js'
import {
  CHECKPOINT_KEY,
  DBDIR_KEY,
  relBlockKey,
  relDirKey,
  relSizeKey,
  SlruKind,
  slruBlockKey,
} from '../../src/pgdata/datadir-mapping.js'
import { describeBound, describeKey, describeKeyRange, parseRelArg } from '../../src/pgdata/key-describe.js'

const rel = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }
const vm = { ...rel, forkNum: 2 }

describe('describeKey', () => {
  it('names relation blocks as pg_waldump does, the fork only when not main', () => {
    expect(describeKey(relBlockKey(rel, 7))).toBe('rel 1663/5/16384 blk 7')
    expect(describeKey(relBlockKey(vm, 0))).toBe('rel 1663/5/16384 fork vm blk 0')
    expect(describeKey(relSizeKey(rel))).toBe('rel 1663/5/16384 size')
  })
  it('names the other kinds of keys', () => {
    expect(describeKey(slruBlockKey(SlruKind.Clog, 0, 3))).toBe('slru pg_xact seg 0 blk 3')
    expect(describeKey(DBDIR_KEY)).toBe('dbdir')
    expect(describeKey(relDirKey(1663, 5))).toBe('reldir 1663/5')
    expect(describeKey(CHECKPOINT_KEY)).toBe('checkpoint')
  })
  it('prints bounds outside the layout in hex', () => {
    expect(describeKey(KEY_MIN)).toBe('dbdir')
    expect(describeKey(KEY_MAX)).toBe('max')
    const outside = Buffer.alloc(18, 0)
    outside[0] = 0x7f
    expect(describeKey(outside)).toBe(`7F${'00'.repeat(17)}`)
  })
})

describe('describeKeyRange', () => {
  it('gives a block range within one fork', () => {
    expect(describeKeyRange({ start: relBlockKey(rel, 0), end: relBlockKey(rel, 100) })).toBe(
      'rel 1663/5/16384 blk 0-99',
    )
    expect(describeKeyRange({ start: relBlockKey(rel, 4), end: relBlockKey(rel, 5) })).toBe(
      'rel 1663/5/16384 blk 4',
    )
    expect(describeKeyRange({ start: relBlockKey(rel, 2), end: nextKey(relSizeKey(rel)) })).toBe(
      'rel 1663/5/16384 blk 2-end',
    )
  })
  it('names the forks of one relation', () => {
    expect(describeKeyRange({ start: relBlockKey(rel, 0), end: nextKey(relSizeKey(vm)) })).toBe(
      'rel 1663/5/16384 forks main-vm',
    )
  })
  it('gives the first and last keys of a range wider than a relation', () => {
    expect(describeKeyRange({ start: KEY_MIN, end: KEY_MAX })).toBe('min .. max')
    const other = { ...rel, relNode: 16390 }
    expect(describeKeyRange({ start: relBlockKey(rel, 0), end: relBlockKey(other, 1) })).toBe(
      'rel 1663/5/16384 blk 0 .. rel 1663/5/16390 blk 0',
    )
    // Below a relation's first block lies no key of the layout: the range ends before that block.
    expect(describeKeyRange({ start: relBlockKey(rel, 0), end: relBlockKey(other, 0) })).toBe(
      'rel 1663/5/16384 blk 0 .. before rel 1663/5/16390 blk 0',
    )
    // An end just past the checkpoint key is outside the layout; the last key held is the checkpoint.
    expect(describeKeyRange({ start: relBlockKey(rel, 9), end: nextKey(CHECKPOINT_KEY) })).toBe(
      'rel 1663/5/16384 blk 9 .. checkpoint',
    )
  })
})

describe('describeBound', () => {
  it('names bounds between layers', () => {
    expect(describeBound(KEY_MIN)).toBe('min')
    expect(describeBound(KEY_MAX)).toBe('max')
    expect(describeBound(relBlockKey(rel, 3))).toBe('rel 1663/5/16384 blk 3')
    expect(describeBound(nextKey(CHECKPOINT_KEY))).toBe('after checkpoint')
  })
})

describe('parseRelArg', () => {
  it('reads spc/db/rel with an optional fork name', () => {
    expect(parseRelArg('1663/5/16384')).toEqual(rel)
    expect(parseRelArg('1663/5/16384.vm')).toEqual(vm)
  })
  it('refuses what is not a relation, naming what is valid', () => {
    expect(() => parseRelArg('16384')).toThrow(/invalid relation "16384"/)
    expect(() => parseRelArg('1663/5/16384.heap')).toThrow(/valid forks are main, fsm, vm, init/)
    expect(() => parseRelArg('1663/5/99999999999')).toThrow(/32-bit/)
  })
})
