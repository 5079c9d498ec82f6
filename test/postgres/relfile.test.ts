import { describe, expect, it } from 'vitest'
import {
  blockLocation,
  forkSuffix,
  parseRelFileName,
  relationSegmentPath,
} from '../../src/postgres/relfile.js'

describe('relation file names', () => {
  it('names segment files of every fork and tablespace, and parses them back', () => {
    const rel = { spcNode: 1663, dbNode: 5, relNode: 16384 }
    expect(relationSegmentPath(rel, 0)).toBe('base/5/16384')
    expect(relationSegmentPath(rel, 2, 3)).toBe('base/5/16384_vm.3')
    expect(relationSegmentPath({ spcNode: 1664, dbNode: 0, relNode: 1262 }, 1)).toBe('global/1262_fsm')
    expect(relationSegmentPath({ spcNode: 16500, dbNode: 5, relNode: 7 }, 3)).toBe(
      'pg_tblspc/16500/PG_15_202209061/5/7_init',
    )
    expect(blockLocation(rel, 0, 131072 + 5)).toEqual({ path: 'base/5/16384.1', offset: 5 * 8192 })
    expect(parseRelFileName('16384_vm.3')).toEqual({ relNode: 16384, forkNum: 2, segNo: 3 })
    expect(parseRelFileName('16384')).toEqual({ relNode: 16384, forkNum: 0, segNo: 0 })
    for (const other of ['pg_filenode.map', 'PG_VERSION', 'pg_internal.init', '123_xyz', '12.']) {
      expect(parseRelFileName(other)).toBeNull()
    }
    expect(forkSuffix(1)).toBe('_fsm')
    expect(() => forkSuffix(4)).toThrow(/valid forks are 0 .. 3/)
  })
})
