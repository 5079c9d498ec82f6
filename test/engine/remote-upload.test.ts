import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeIndexPart, type IndexPart } from '../../src/engine/index-part.js'
import { encodeKey } from '../../src/engine/key.js'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { indexKey, layerKey, parseRemoteKey, timelinePrefix } from '../../src/engine/remote-layout.js'
import { Repository, type RepositoryOptions } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { testRedo } from '../harness/engine.js'

/** Local-directory storage that checks, at every index put, that each layer listed is stored already. */
class CheckingStorage extends LocalFsStorage {
  readonly violations: string[] = []
  layerPuts = 0

  override async put(key: string, body: Buffer): Promise<void> {
    const k = parseRemoteKey(key)
    if (k?.kind === 'index') {
      for (const [name, l] of Object.entries(decodeIndexPart(body, key).layers)) {
        const file = path.join(
          this.root,
          ...layerKey(k.tenantId, k.timelineId, name, l.generation).split('/'),
        )
        if (!existsSync(file)) this.violations.push(`index lists ${name} before it is stored`)
      }
    }
    await super.put(key, body)
  }

  override async putFile(key: string, localPath: string): Promise<void> {
    await super.putFile(key, localPath)
    this.layerPuts++
  }
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-remote-upload-'))
  dirs.push(dir)
  const storage = new CheckingStorage(path.join(dir, 'remote'))
  const opts: RepositoryOptions = {
    redo: testRedo(),
    background: false,
    remote: { storage, backoff: { baseMs: 5, maxMs: 50 } },
  }
  const open = () => Repository.open(path.join(dir, 'repo'), opts)
  const remoteIndex = async (tl: Timeline): Promise<IndexPart> => {
    const key = indexKey(tl.tenantId, tl.timelineId, 1)
    return decodeIndexPart(await storage.get(key), key)
  }
  /** Layer names stored remotely for the timeline (generation 1). */
  const remoteLayers = async (tl: Timeline): Promise<string[]> =>
    (await storage.list(timelinePrefix(tl.tenantId, tl.timelineId)))
      .map((o) => parseRemoteKey(o.key))
      .flatMap((k) => (k?.kind === 'layer' ? [k.layer] : []))
      .sort()
  return { storage, open, remoteIndex, remoteLayers }
}

const key = (i: number) => encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: i })

function writePages(tl: Timeline, count: number, fill: number): void {
  let lsn = tl.lastRecordLsn
  const writes = []
  for (let i = 0; i < count; i++) {
    lsn += 8
    writes.push({
      key: key(i),
      lsn,
      value: { kind: 'image' as const, page: Buffer.alloc(8192, (i + fill) & 0xff) },
    })
  }
  tl.ingest(writes, lsn)
}

/** Local layer files of the timeline with their sizes. */
const localLayers = (tl: Timeline) =>
  Object.fromEntries(
    tl
      .layerInfo()
      .filter((l) => l.file)
      .map((l) => [l.file!, l.bytes]),
  )

describe('remote storage of a timeline', () => {
  it('uploads flushed, compacted and image layers; the index lists exactly the local files', async () => {
    const s = setup()
    const repo = await s.open()
    const tenant = repo.createTenant({
      config: {
        checkpoint_distance: 65536,
        compaction_target_size: '256 KiB',
        gc_horizon: 0,
        pitr_interval: '0 s',
      },
    })
    const tl = tenant.createTimeline(0x100)
    for (let round = 0; round < 6; round++) {
      writePages(tl, 20, round)
      await tl.checkpoint()
    }
    expect(tl.layers.l0().length).toBeGreaterThanOrEqual(6)
    const { compaction } = await tenant.compact(tl, true)
    expect(compaction?.inputs).toBeGreaterThanOrEqual(6)
    writePages(tl, 20, 9)
    await tl.checkpoint()
    await tl.uploads!.flush()
    const kinds = () => new Set(tl.layerInfo().map((l) => (l.l0 ? 'L0' : l.kind)))
    expect(kinds()).toEqual(new Set(['L0', 'delta', 'image']))
    await expectRemoteEqualsLocal()
    const beforeGc = Object.keys(localLayers(tl))
    const gc = await tenant.gc(tl)
    expect(gc.removed).toBeGreaterThan(0)
    await tl.uploads!.flush()
    const index = await expectRemoteEqualsLocal()
    const removed = beforeGc.filter((n) => !(n in index.layers))
    expect(removed).toHaveLength(gc.removed)

    /** The index lists exactly the local layer files with their sizes, and storage holds just those. */
    async function expectRemoteEqualsLocal(): Promise<IndexPart> {
      const index = await s.remoteIndex(tl)
      const local = localLayers(tl)
      expect(Object.fromEntries(Object.entries(index.layers).map(([n, l]) => [n, l.fileSize]))).toEqual(local)
      expect(Object.values(index.layers).every((l) => l.generation === 1)).toBe(true)
      // Compacted L0s and what GC removed are deleted remotely too.
      expect(await s.remoteLayers(tl)).toEqual(Object.keys(local).sort())
      return index
    }
    expect(index.metadata).toMatchObject({
      diskConsistentLsn: tl.diskConsistentLsn,
      ancestorTimeline: null,
      initdbLsn: 0x100,
      latestGcCutoffLsn: tl.latestGcCutoffLsn,
      pgVersion: 15,
    })
    expect(tl.remoteConsistentLsn).toBe(tl.diskConsistentLsn)
    expect(s.storage.violations).toEqual([])
    await repo.close()
  })

  it('uploads a branch index with its ancestor and no layers, and keeps remote_consistent_lsn behind until uploaded', async () => {
    const s = setup()
    const repo = await s.open()
    const tenant = repo.createTenant()
    const main = tenant.createTimeline(0x100)
    // A root timeline without layers has no index yet: it would say nothing.
    await main.uploads!.flush()
    expect(await s.storage.list(timelinePrefix(tenant.tenantId, main.timelineId))).toEqual([])
    writePages(main, 10, 1)
    await main.checkpoint()
    const branch = tenant.branch(main.timelineId)
    await branch.uploads!.flush()
    const index = await s.remoteIndex(branch)
    expect(index.layers).toEqual({})
    expect(index.metadata).toMatchObject({
      ancestorTimeline: main.timelineId,
      ancestorLsn: branch.ancestorLsn,
    })
    expect(branch.remoteConsistentLsn).toBe(branch.ancestorLsn)
    await main.uploads!.flush()
    expect(main.remoteConsistentLsn).toBe(main.diskConsistentLsn)
    writePages(main, 10, 2)
    await main.checkpoint()
    // Until the upload is done, what is remote is the older index.
    expect(main.remoteConsistentLsn).toBeLessThan(main.diskConsistentLsn)
    await main.uploads!.flush()
    expect(main.remoteConsistentLsn).toBe(main.diskConsistentLsn)
    await repo.close()
  })

  it('after a restart uploads only what is not in the remote index yet', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    writePages(tl, 10, 1)
    await tl.checkpoint()
    await repo.close() // a graceful shutdown waits for the uploads
    const puts = s.storage.layerPuts
    expect(puts).toBe(1)

    repo = await s.open()
    const again = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    await again.uploads!.flush()
    expect(s.storage.layerPuts).toBe(puts)
    expect(again.remoteConsistentLsn).toBe(again.diskConsistentLsn)
    writePages(again, 10, 2)
    await again.checkpoint()
    await again.uploads!.flush()
    expect(s.storage.layerPuts).toBe(puts + 1)
    expect(Object.keys((await s.remoteIndex(again)).layers).sort()).toEqual(
      Object.keys(localLayers(again)).sort(),
    )
    await repo.close()
  })

  it('without remote storage, remote_consistent_lsn is disk_consistent_lsn', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-remote-upload-'))
    dirs.push(dir)
    const repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tl = repo.createTenant().createTimeline(0x100)
    writePages(tl, 10, 1)
    await tl.checkpoint()
    expect(tl.uploads).toBeNull()
    expect(tl.remoteConsistentLsn).toBe(tl.diskConsistentLsn)
    await repo.close()
  })
})
