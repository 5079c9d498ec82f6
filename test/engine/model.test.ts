/**
 * The engine against a model: per timeline, key → sorted (lsn, value), plus the ancestor and branch
 * point. Thousands of random operations — batches of writes, reads at random LSNs, branches, checkpoints,
 * compactions, image creation, GC and full reopenings — and every read must equal the model's.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GcCutoffError } from '../../src/engine/errors.js'
import { encodeKey } from '../../src/engine/key.js'
import { Repository } from '../../src/engine/repository.js'
import { Slicer } from '../../src/engine/slicer.js'
import type { Timeline } from '../../src/engine/timeline.js'
import type { Value } from '../../src/engine/value.js'
import { APPEND, SET_BYTE, testRedo } from '../harness/engine.js'
import { randomInt } from '../harness/random.js'

interface ModelTimeline {
  id: string
  ancestor: ModelTimeline | null
  ancestorLsn: number
  versions: Map<string, { lsn: number; value: Value }[]>
}

function modelGet(tl: ModelTimeline, keyHex: string, lsn: number): Buffer | null {
  const stack: Value[] = []
  let t: ModelTimeline | null = tl
  let at = lsn
  while (t) {
    const vs = t.versions.get(keyHex) ?? []
    for (let i = vs.length - 1; i >= 0; i--) {
      if (vs[i].lsn > at) continue
      stack.push(vs[i].value)
      const v = vs[i].value
      if (v.kind === 'image' || v.willInit) return replay(stack)
    }
    if (!t.ancestor) break
    at = Math.min(at, t.ancestorLsn)
    t = t.ancestor
  }
  return stack.length === 0 ? null : replay(stack)
}

function replay(stack: Value[]): Buffer {
  let page: Buffer | null = null
  const redo = testRedo()
  for (let i = stack.length - 1; i >= 0; i--) {
    const v = stack[i]
    page =
      v.kind === 'image'
        ? v.page
        : redo.apply(Buffer.alloc(18), v.willInit ? null : page, v.recordKind, v.data, 0)
  }
  return page!
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('storage engine against a model', () => {
  it('agrees with the model over thousands of random operations', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-engine-model-'))
    dirs.push(dir)
    const config = {
      checkpoint_distance: 96 * 1024,
      compaction_target_size: 160 * 1024,
      compaction_threshold: 3,
      image_creation_threshold: 2,
      gc_horizon: 64 * 1024,
      pitr_interval: 0,
    }
    const open = () =>
      Repository.open(dir, {
        pageCacheSlots: 48,
        memoryBudget: 160 * 1024,
        redo: testRedo(),
        background: false,
      })
    let repo = await open()
    const tenantId = repo.createTenant({ config }).tenantId
    const next = randomInt(424242)
    const keys = Array.from({ length: 240 }, (_, i) =>
      encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 16384 + (i % 7), field5: 0, field6: i }),
    )
    const root = repo.tenant(tenantId).createTimeline(0x1000)
    const model: ModelTimeline[] = [
      { id: root.timelineId, ancestor: null, ancestorLsn: 0, versions: new Map() },
    ]
    const tl = (m: ModelTimeline): Timeline => repo.tenant(tenantId).timeline(m.id)
    const counts: Record<string, number> = {}
    let evictions = 0
    const count = (op: string) => {
      counts[op] = (counts[op] ?? 0) + 1
    }

    const randomValue = (): Value => {
      const r = next(10)
      if (r < 4) return { kind: 'image', page: Buffer.alloc(1 + next(9000), next(256)) }
      if (r < 5)
        return {
          kind: 'record',
          recordKind: APPEND,
          willInit: true,
          data: Buffer.alloc(1 + next(300), next(256)),
        }
      if (r < 8)
        return {
          kind: 'record',
          recordKind: APPEND,
          willInit: false,
          data: Buffer.alloc(1 + next(200), next(256)),
        }
      const rec = Buffer.alloc(3)
      rec.writeUInt16BE(next(400), 0)
      rec[2] = next(256)
      return { kind: 'record', recordKind: SET_BYTE, willInit: false, data: rec }
    }

    const checkRead = (m: ModelTimeline, keyIdx: number, lsn: number) => {
      const t = tl(m)
      const want = modelGet(m, keys[keyIdx].toString('hex'), lsn)
      if (lsn < t.latestGcCutoffLsn) {
        expect(() => t.get(keys[keyIdx], lsn)).toThrow(GcCutoffError)
        return
      }
      let got: Buffer | null
      try {
        got = t.get(keys[keyIdx], lsn)
      } catch (err) {
        // A key whose history starts with a plain record has no page yet: the model cannot build it either.
        if ((err as Error).name === 'ReconstructError' && want === null) return
        if ((err as Error).name === 'ReconstructError') throw err
        throw err
      }
      if (want === null || got === null) expect(got).toEqual(want)
      else if (!got.equals(want)) expect(got.toString('hex')).toBe(want.toString('hex'))
    }

    for (let step = 0; step < 2000; step++) {
      const m = model[next(model.length)]
      const t = tl(m)
      const op = next(100)
      if (op < 45) {
        count('ingest')
        const writes = []
        let lsn = t.lastRecordLsn
        for (let i = 1 + next(12); i > 0; i--) {
          lsn += 8 * (1 + next(40))
          const k = next(keys.length)
          // A key's first version must be able to stand alone, like a Postgres page's first WAL record.
          const known = modelGet(m, keys[k].toString('hex'), lsn) !== null
          let value = randomValue()
          if (!known && value.kind === 'record' && !value.willInit)
            value = { ...value, willInit: true, recordKind: APPEND }
          writes.push({ key: keys[k], lsn, value })
          const vs = m.versions.get(keys[k].toString('hex')) ?? []
          vs.push({ lsn, value })
          m.versions.set(keys[k].toString('hex'), vs)
        }
        t.ingest(writes, lsn + 8 * next(3))
      } else if (op < 80) {
        count('get')
        const lo = Math.max(t.metadata.initLsn, t.latestGcCutoffLsn - 64)
        const lsn = lo + next(Math.max(1, t.lastRecordLsn - lo + 1))
        checkRead(m, next(keys.length), Math.min(lsn, t.lastRecordLsn))
      } else if (op < 84) {
        count('branch')
        if (model.length > 6) continue
        const lo = Math.max(t.metadata.initLsn, t.latestGcCutoffLsn, t.lastRecordLsn - 32 * 1024)
        const at = lo + 8 * next(Math.max(1, Math.floor((t.lastRecordLsn - lo) / 8) + 1))
        try {
          const b = repo
            .tenant(tenantId)
            .branch(m.id, { lsn: Math.min(at, t.lastRecordLsn) - (Math.min(at, t.lastRecordLsn) % 8) })
          model.push({ id: b.timelineId, ancestor: m, ancestorLsn: b.ancestorLsn, versions: new Map() })
        } catch (err) {
          expect((err as Error).name).toBe('GcCutoffError')
        }
      } else if (op < 88) {
        count('checkpoint')
        await t.checkpoint()
        expect(t.diskConsistentLsn).toBe(t.lastRecordLsn)
      } else if (op < 93) {
        count('compact')
        await t.checkpoint()
        await repo.tenant(tenantId).compact(t, next(3) === 0)
      } else if (op < 97) {
        count('gc')
        await t.checkpoint()
        const before = t.latestGcCutoffLsn
        await repo.tenant(tenantId).gc(t, { gcHorizon: next(2) === 0 ? 16 * 1024 : 256 * 1024 })
        expect(t.latestGcCutoffLsn).toBeGreaterThanOrEqual(before)
      } else {
        count('reopen')
        evictions += repo.memory.evictions
        await repo.close({ flush: true })
        repo = await open()
        for (const mm of model) expect(tl(mm).lastRecordLsn).toBe(tl(mm).diskConsistentLsn)
      }
      if (step % 97 === 0) {
        // A full sweep: every key of every timeline at its latest LSN and at a random older one.
        for (const mm of model) {
          const tt = tl(mm)
          for (let k = 0; k < keys.length; k += 7) checkRead(mm, k, tt.lastRecordLsn)
        }
      }
    }
    for (const mm of model) {
      const tt = tl(mm)
      const listed = (await tt.listKeys(tt.lastRecordLsn, new Slicer(0.05))).map((k) => k.toString('hex'))
      const expected = keys
        .map((k) => k.toString('hex'))
        .filter((k) => modelGet(mm, k, tt.lastRecordLsn) !== null)
        .sort()
      expect(listed.filter((k) => expected.includes(k))).toEqual(expected)
    }
    const layers = model.flatMap((mm) => tl(mm).layerInfo())
    expect(layers.some((l) => l.kind === 'image')).toBe(true)
    expect(layers.some((l) => l.kind === 'delta' && !l.l0)).toBe(true)
    expect(counts.gc).toBeGreaterThan(20)
    // Open layers of several timelines outgrew the memory budget, and the GClock sweep froze some.
    expect(evictions + repo.memory.evictions).toBeGreaterThan(0)
    await repo.close()
  }, 120_000)
})
