import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GcCutoffError, LsnTimeoutError } from '../../src/engine/errors.js'
import { encodeKey } from '../../src/engine/key.js'
import { LayerCorruptionError } from '../../src/engine/layer-file.js'
import { Repository } from '../../src/engine/repository.js'
import { Slicer } from '../../src/engine/slicer.js'
import { TenantConfigError } from '../../src/engine/tenant-config.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { APPEND, testRedo } from '../harness/engine.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempRepoDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'zenith-timeline-'))
  dirs.push(d)
  return d
}

const key = (i: number) => encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: i })
const page = (i: number, fill: number) => Buffer.alloc(8192, (i * 31 + fill) & 0xff)

/** Writes `count` pages at consecutive LSNs from the timeline's tip; returns the last LSN. */
function writePages(tl: Timeline, count: number, fill: number, first = 0): number {
  let lsn = tl.lastRecordLsn
  const writes = []
  for (let i = 0; i < count; i++) {
    lsn += 8
    writes.push({ key: key(first + i), lsn, value: { kind: 'image' as const, page: page(first + i, fill) } })
  }
  tl.ingest(writes, lsn)
  return lsn
}

describe('timeline', () => {
  it('reports a corrupt layer block with the file and offset, and refuses a corrupt header', async () => {
    const dir = tempRepoDir()
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    const lsn = writePages(tl, 40, 1)
    await tl.checkpoint()
    const layer = tl.layerInfo().find((l) => l.kind === 'delta')!
    const file = path.join(tl.dir, layer.file!)
    await repo.close()

    const bytes = readFileSync(file)
    bytes[8192 * 10 + 100] ^= 0x10
    writeFileSync(file, bytes)
    repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const t2 = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    let failure: unknown = null
    for (let i = 0; i < 40 && !failure; i++) {
      try {
        t2.get(key(i), lsn)
      } catch (err) {
        failure = err
      }
    }
    expect(failure).toBeInstanceOf(LayerCorruptionError)
    expect((failure as Error).message).toContain(file)
    expect((failure as Error).message).toContain('offset 81920')
    await repo.close()

    bytes[50] ^= 0xff // inside the header block
    writeFileSync(file, bytes)
    await expect(Repository.open(dir, { redo: testRedo(), background: false })).rejects.toThrow(file)
  })

  it('restores tenants, config, timelines and branches on reopen, and branches in O(1)', async () => {
    const dir = tempRepoDir()
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant({ config: { gc_horizon: '1 MiB', checkpoint_distance: 262144 } })
    const main = tenant.createTimeline(0x100)
    const mid = writePages(main, 200, 1)
    writePages(main, 200, 2)
    await main.checkpoint()
    const branch = tenant.branch(main.timelineId, { lsn: mid })
    expect(readdirSync(branch.dir)).toEqual(['metadata'])
    const tip = writePages(branch, 10, 3)
    await repo.close()

    repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const t = repo.tenant(tenant.tenantId)
    expect(t.configOverrides).toEqual({ gc_horizon: 1 << 20, checkpoint_distance: 262144 })
    const b = t.timeline(branch.timelineId)
    expect(b.ancestor?.timelineId).toBe(main.timelineId)
    expect(b.ancestorLsn).toBe(mid)
    expect(b.get(key(5), tip)).toEqual(page(5, 3))
    expect(b.get(key(150), tip)).toEqual(page(150, 1))
    expect(t.timeline(main.timelineId).get(key(150), t.timeline(main.timelineId).lastRecordLsn)).toEqual(
      page(150, 2),
    )
    await repo.close()
  })

  it('removes leftovers of interrupted writes and layers past disk_consistent_lsn when it opens', async () => {
    const dir = tempRepoDir()
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    const lsn = writePages(tl, 10, 1)
    await tl.checkpoint()
    await repo.close()
    // A whole-keyspace image layer at an LSN the metadata never reached: a flush that did not finish.
    const future = `${'00'.repeat(18)}-${'FF'.repeat(18)}__0000000000100000`
    for (const leftover of ['half-written.___temp', 'ephemeral-123-1', future]) {
      writeFileSync(path.join(tl.dir, leftover), 'junk')
    }
    repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const reopened = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    const layerFiles = reopened.layerInfo().map((l) => l.file!)
    expect(layerFiles).toHaveLength(1)
    expect(readdirSync(tl.dir).sort()).toEqual(['metadata', ...layerFiles].sort())
    expect(reopened.get(key(3), lsn)).toEqual(page(3, 1))
    await repo.close()
  })

  it('applies config changes live, refuses invalid ones whole, and keeps them', async () => {
    const dir = tempRepoDir()
    const repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    writePages(tl, 4, 1)
    expect(tl.frozenLayerCount + tl.layerInfo().filter((l) => l.kind === 'delta').length).toBe(0)
    tenant.updateConfig({ checkpoint_distance: '64 KiB' })
    writePages(tl, 10, 2)
    // The open layer passed the new checkpoint_distance and was frozen for flushing.
    expect(tl.layerInfo().some((l) => l.kind === 'frozen' || l.kind === 'delta')).toBe(true)
    expect(() => tenant.updateConfig({ checkpoint_distance: '1 KiB', gc_horizon: 5 })).toThrow(
      TenantConfigError,
    )
    expect(() => tenant.updateConfig({ compaction_threshold: 'many' })).toThrow(/compaction_threshold/)
    expect(tenant.config.gc_horizon).toBe(64 * 1024 * 1024)
    expect(tenant.config.checkpoint_distance).toBe(64 * 1024)
    await repo.close()
    const again = await Repository.open(dir, { redo: testRedo(), background: false })
    expect(again.tenant(tenant.tenantId).config.checkpoint_distance).toBe(64 * 1024)
    await again.close()
  })

  it('makes disk_consistent_lsn reach last_record_lsn on a checkpoint, also after records without writes', async () => {
    const dir = tempRepoDir()
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    writePages(tl, 3, 1)
    await tl.checkpoint()
    tl.ingest([], tl.lastRecordLsn + 24)
    expect(tl.diskConsistentLsn).toBeLessThan(tl.lastRecordLsn)
    await tl.checkpoint()
    const last = tl.lastRecordLsn
    expect(tl.diskConsistentLsn).toBe(last)
    await repo.close()
    repo = await Repository.open(dir, { redo: testRedo(), background: false })
    expect(repo.tenant(tenant.tenantId).timeline(tl.timelineId).lastRecordLsn).toBe(last)
    await repo.close()
  })

  it('waits for LSNs, refuses reads and branches below the GC cutoff', async () => {
    const dir = tempRepoDir()
    const repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant({ config: { pitr_interval: '0 s', gc_horizon: 0 } })
    const tl = tenant.createTimeline(0x100)
    const waiting = tl.waitLsn(0x100 + 8 * 3, 5000)
    writePages(tl, 3, 1)
    await waiting
    await expect(tl.waitLsn(0x9999990, 50)).rejects.toThrow(LsnTimeoutError)
    const old = tl.lastRecordLsn
    writePages(tl, 3, 2)
    await tl.checkpoint()
    await tenant.compact(tl, true)
    const result = await tenant.gc(tl)
    expect(result.cutoff).toBe(tl.lastRecordLsn)
    expect(() => tl.get(key(0), old)).toThrow(GcCutoffError)
    expect(() => tl.get(key(0), old)).toThrow(/garbage-collected history below/)
    expect(() => tenant.branch(tl.timelineId, { lsn: old })).toThrow(GcCutoffError)
    expect(tl.get(key(0), tl.lastRecordLsn)).toEqual(page(0, 2))
    await repo.close()
  })

  it('lists the keys at an LSN in slices, and starts over when compaction removes a layer under it', async () => {
    const dir = tempRepoDir()
    const repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant({ config: { compaction_threshold: 2 } })
    const tl = tenant.createTimeline(0x100)
    for (let round = 0; round < 3; round++) {
      writePages(tl, 300, round, round * 100)
      await tl.checkpoint()
    }
    const lsn = tl.lastRecordLsn
    const want = Array.from({ length: 500 }, (_, i) => key(i).toString('hex'))
    // Pauses at every key; at the first, the L0s the walk has begun are compacted away.
    let compacted: Promise<unknown> | null = null
    let pauses = 0
    class CompactingSlicer extends Slicer {
      override async yield(): Promise<void> {
        pauses++
        compacted ??= tenant.compact(tl, true)
        if (pauses === 1) await compacted
      }
    }
    const listed = await tl.listKeys(lsn, new CompactingSlicer(0))
    expect(listed.map((k) => k.toString('hex'))).toEqual(want)
    expect(tl.layerInfo().filter((l) => l.l0)).toHaveLength(0)
    expect(pauses).toBeGreaterThan(500)
    await repo.close()
  })

  it('runs flush and compaction in the background, and joins the tasks on shutdown', async () => {
    const dir = tempRepoDir()
    const repo = await Repository.open(dir, { redo: testRedo() })
    const tenant = repo.createTenant({
      config: {
        checkpoint_distance: '64 KiB',
        compaction_threshold: 2,
        compaction_period: '20 ms',
        compaction_target_size: '64 KiB',
      },
    })
    const tl = tenant.createTimeline(0x100)
    for (let round = 0; round < 6; round++) writePages(tl, 12, round)
    const deadline = Date.now() + 20_000
    while (!tl.layerInfo().some((l) => l.kind === 'delta' && !l.l0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(tl.layerInfo().some((l) => l.kind === 'delta' && !l.l0)).toBe(true)
    const kinds = new Set(repo.tasks.list({ tenantId: tenant.tenantId }).map((t) => t.kind))
    expect(kinds).toEqual(new Set(['flush', 'compaction', 'gc', 'housekeeping']))
    await repo.close()
    expect(repo.tasks.list().filter((t) => t.state === 'running')).toEqual([])
  })

  it('flushes a large frozen layer in a worker thread, and reads it back', async () => {
    const dir = tempRepoDir()
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    // 1,200 pages of 8 KiB: past the 8 MiB from which a worker writes the L0.
    writePages(tl, 600, 1)
    tl.ingest(
      [
        {
          key: key(5),
          lsn: tl.lastRecordLsn + 8,
          value: { kind: 'record', recordKind: APPEND, willInit: false, data: Buffer.from('+r') },
        },
      ],
      tl.lastRecordLsn + 8,
    )
    const last = writePages(tl, 600, 2, 600)
    await tl.checkpoint()
    expect(tl.layerInfo().filter((l) => l.kind === 'delta')).toHaveLength(1)
    await repo.close()
    repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const t = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    for (const i of [0, 5, 599, 600, 1199]) {
      const want = i === 5 ? Buffer.concat([page(5, 1), Buffer.from('+r')]) : page(i, i < 600 ? 1 : 2)
      expect(t.get(key(i), last)).toEqual(want)
    }
    await repo.close()
  })

  it('reconstructs pages from records through the registered redo function', async () => {
    const dir = tempRepoDir()
    const repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tl = repo.createTenant().createTimeline(0x100)
    tl.ingest([{ key: key(1), lsn: 0x108, value: { kind: 'image', page: Buffer.from('base') } }], 0x108)
    tl.ingest(
      [
        {
          key: key(1),
          lsn: 0x110,
          value: { kind: 'record', recordKind: APPEND, willInit: false, data: Buffer.from('+a') },
        },
      ],
      0x110,
    )
    await tl.checkpoint()
    tl.ingest(
      [
        {
          key: key(1),
          lsn: 0x118,
          value: { kind: 'record', recordKind: APPEND, willInit: false, data: Buffer.from('+b') },
        },
      ],
      0x118,
    )
    expect(tl.get(key(1), 0x108)?.toString()).toBe('base')
    expect(tl.get(key(1), 0x110)?.toString()).toBe('base+a')
    expect(tl.get(key(1), 0x118)?.toString()).toBe('base+a+b')
    expect(tl.get(key(2), 0x118)).toBeNull()
    tl.ingest(
      [
        {
          key: key(1),
          lsn: 0x120,
          value: { kind: 'record', recordKind: 77, willInit: false, data: Buffer.alloc(1) },
        },
      ],
      0x120,
    )
    expect(() => tl.get(key(1), 0x120)).toThrow(/no redo function is registered for record kind 77/)
    await repo.close({ flush: false })
  })
})
