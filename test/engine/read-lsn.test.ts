/** The one decision of the LSN a read runs at, alone and through a timeline that waits. */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GcCutoffError, LsnRangeError, LsnTimeoutError } from '../../src/engine/errors.js'
import { encodeKey } from '../../src/engine/key.js'
import { type ReadBounds, resolveReadLsn } from '../../src/engine/read-lsn.js'
import { Repository } from '../../src/engine/repository.js'
import { walQuietUntil } from '../../src/postgres/wal-page.js'
import { testRedo } from '../harness/engine.js'

const bounds: ReadBounds = {
  lastRecordLsn: 0x2000,
  quietUntil: 0x2028,
  startLsn: 0x1000,
  gcCutoffLsn: 0x1800,
}

describe('resolveReadLsn', () => {
  it('reads the latest at last_record_lsn, and an LSN it has at that LSN', () => {
    expect(resolveReadLsn(bounds, {})).toEqual({ lsn: 0x2000 })
    expect(resolveReadLsn(bounds, { lsn: 0x2000 })).toEqual({ lsn: 0x2000 })
    expect(resolveReadLsn(bounds, { lsn: 0x1800 })).toEqual({ lsn: 0x1800 })
    expect(resolveReadLsn(bounds, { lsn: 0x1abc })).toEqual({ lsn: 0x1abc })
  })

  it('reads an LSN past last_record_lsn where nothing can have been committed at last_record_lsn', () => {
    expect(resolveReadLsn(bounds, { lsn: 0x2018 })).toEqual({ lsn: 0x2000 })
    expect(resolveReadLsn(bounds, { lsn: 0x2028 })).toEqual({ lsn: 0x2000 })
    // not_modified_since within that range needs no wait either.
    expect(resolveReadLsn(bounds, { lsn: 0x9000, needed: 0x2028, wait: true })).toEqual({ lsn: 0x2000 })
    expect(resolveReadLsn(bounds, { needed: 0x2010, wait: true })).toEqual({ lsn: 0x2000 })
  })

  it('waits for an LSN beyond, or refuses it when the caller cannot wait', () => {
    expect(resolveReadLsn(bounds, { lsn: 0x2030, wait: true })).toEqual({ waitFor: 0x2030 })
    expect(resolveReadLsn(bounds, { lsn: 0x9000, needed: 0x3000, wait: true })).toEqual({ waitFor: 0x3000 })
    expect(resolveReadLsn(bounds, { needed: 0x3000, wait: true })).toEqual({ waitFor: 0x3000 })
    expect(() => resolveReadLsn(bounds, { lsn: 0x2030, what: 'LSN', where: 'branch main' })).toThrow(
      new LsnRangeError('LSN 0/2030 is beyond the end of branch main (last_record_lsn 0/2000)'),
    )
  })

  it('refuses an LSN below the GC cutoff or before the start, waiting or not', () => {
    expect(() => resolveReadLsn(bounds, { lsn: 0x17f8, wait: true })).toThrow(GcCutoffError)
    expect(() => resolveReadLsn(bounds, { lsn: 0x17f8, where: 'timeline x' })).toThrow(
      'read at 0/17F8 refused: timeline x has garbage-collected history below 0/1800',
    )
    expect(() => resolveReadLsn({ ...bounds, gcCutoffLsn: 0 }, { lsn: 0xff8, what: 'LSN' })).toThrow(
      new LsnRangeError('LSN 0/FF8 is before the start of the timeline (0/1000)'),
    )
    expect(() => resolveReadLsn(bounds, { lsn: -1 })).toThrow(LsnRangeError)
  })
})

describe('walQuietUntil', () => {
  it('reaches an idle compute’s insert LSN: the aligned end, past the page header on a page boundary', () => {
    expect(walQuietUntil(0x1_0030)).toBe(0x1_0030)
    expect(walQuietUntil(0x1_2000)).toBe(0x1_2000 + 40)
    // An end that is not MAXALIGNed (no zenith writes one) still holds up to where the next record starts.
    expect(walQuietUntil(0x1_0032)).toBe(0x1_0038)
  })
})

describe('Timeline.readLsn', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('waits for an LSN not yet received, then reads there; branches where the read would run', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-read-lsn-'))
    dirs.push(dir)
    const repo = await Repository.open(dir, {
      redo: testRedo(),
      background: false,
      quietUntil: walQuietUntil,
    })
    const tenant = repo.createTenant()
    // An unaligned last_record_lsn, as metadata could hold it: served at once up to the aligned end.
    const tl = tenant.createTimeline(0x1_0032)
    const key = encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: 0 })
    expect(await tl.readLsn({ lsn: 0x1_0038 })).toBe(0x1_0032)
    await expect(tl.readLsn({ lsn: 0x1_0040 })).rejects.toThrow(LsnRangeError)
    await expect(tl.readLsn({ lsn: 0x1_0040, timeoutMs: 20 })).rejects.toThrow(LsnTimeoutError)

    const waiting = tl.readLsn({ lsn: 0x1_0040, timeoutMs: 5000 })
    tl.ingest(
      [{ key, lsn: 0x1_2000, value: { kind: 'image', page: Buffer.alloc(8192, 1) } }],
      0x1_2000,
      0x1_1fd0,
    )
    expect(await waiting).toBe(0x1_0040)
    // A branch at the tip knows the record before it, as its ancestor does; one further back does not.
    expect(tenant.branch(tl.timelineId).prevRecordLsn).toBe(0x1_1fd0)
    expect(tenant.branch(tl.timelineId, { lsn: 0x1_0040 }).prevRecordLsn).toBeNull()

    // At a page boundary, the insert LSN past the page header is served at the boundary.
    expect(tenant.branch(tl.timelineId, { lsn: 0x1_2018 }).ancestorLsn).toBe(0x1_2000)
    expect(() => tenant.branch(tl.timelineId, { lsn: 0x1_2030 })).toThrow(/beyond the end of timeline/)
    expect(() => tenant.branch(tl.timelineId, { lsn: 0x1_0000 })).toThrow(/before the start/)
    await repo.close()
  })
})
