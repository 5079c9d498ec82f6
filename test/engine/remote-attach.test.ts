import { existsSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LayerNotLocalError } from '../../src/engine/errors.js'
import { decodeIndexPart } from '../../src/engine/index-part.js'
import { encodeKey, KEY_MAX, KEY_MIN } from '../../src/engine/key.js'
import { withLocalLayers } from '../../src/engine/layer-download.js'
import { formatLayerName } from '../../src/engine/layer-name.js'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { indexKey, layerKey, parseRemoteKey, timelinePrefix } from '../../src/engine/remote-layout.js'
import { RemoteStorageError } from '../../src/engine/remote-storage.js'
import { Repository, type RepositoryOptions } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { testRedo } from '../harness/engine.js'
import { sleep, waitUntil } from '../harness/wait.js'

/** Local-directory storage whose deletions or layer uploads can be made to fail (and be retried). */
class FlakyStorage extends LocalFsStorage {
  failDeletes = false
  failLayerPuts = false
  deleteAttempts = 0

  override async delete(keys: readonly string[]): Promise<void> {
    this.deleteAttempts++
    if (this.failDeletes) throw new RemoteStorageError('deletes are failing (test)')
    await super.delete(keys)
  }

  override async putFile(key: string, localPath: string): Promise<void> {
    if (this.failLayerPuts) throw new RemoteStorageError('layer uploads are failing (test)')
    await super.putFile(key, localPath)
  }
}

const dirs: string[] = []
const repos: Repository[] = []
afterEach(async () => {
  for (const r of repos.splice(0)) await r.close({ flush: false }).catch(() => undefined)
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

type Line = { level: string; msg: string; fields?: Record<string, unknown> }

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-remote-attach-'))
  dirs.push(dir)
  const storage = new FlakyStorage(path.join(dir, 'remote'))
  const lines: Line[] = []
  const opts: RepositoryOptions = {
    redo: testRedo(),
    background: false,
    log: (level, msg, fields) => lines.push({ level, msg, fields }),
    remote: { storage, backoff: { baseMs: 5, maxMs: 20 } },
  }
  const open = async (name = 'repo', more: Partial<RepositoryOptions> = {}) => {
    const r = await Repository.open(path.join(dir, name), { ...opts, ...more })
    repos.push(r)
    return r
  }
  /** Every object key of the timeline in storage. */
  const objects = async (tl: { tenantId: string; timelineId: string }) =>
    (await storage.list(timelinePrefix(tl.tenantId, tl.timelineId))).map((o) => o.key)
  const downloads = () => lines.filter((l) => l.msg === 'layer downloaded')
  return { dir, storage, lines, open, objects, downloads }
}

const key = (i: number) => encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: i })
const KEYS = 16

/** One batch of page images for every key; returns its commit LSN. */
function writePages(tl: Timeline, fill: number): number {
  let lsn = tl.lastRecordLsn
  const writes = []
  for (let i = 0; i < KEYS; i++) {
    lsn += 8
    writes.push({
      key: key(i),
      lsn,
      value: { kind: 'image' as const, page: Buffer.alloc(8192, (i * 7 + fill) & 0xff) },
    })
  }
  tl.ingest(writes, lsn)
  return lsn
}

/** Every key at every one of `lsns`, as hex digests of the first bytes (small enough to compare). */
async function readAll(tl: Timeline, lsns: number[]): Promise<string[]> {
  const out: string[] = []
  for (const lsn of lsns)
    for (let i = 0; i < KEYS; i++) {
      const page = await withLocalLayers(() => tl.get(key(i), lsn))
      out.push(`${lsn}:${i}:${page ? page.subarray(0, 4).toString('hex') : 'none'}`)
    }
  return out
}

/** A timeline of three L0 layers, each holding every key, all uploaded; returns the batches' LSNs. */
async function threeLayers(tl: Timeline): Promise<number[]> {
  const lsns: number[] = []
  for (let round = 0; round < 3; round++) {
    lsns.push(writePages(tl, round))
    await tl.checkpoint()
  }
  await tl.uploads!.flush()
  return lsns
}

const tempLeftovers = (dir: string) => readdirSync(dir).filter((n) => n.includes('___temp'))

describe('attach and the remote index at start', () => {
  it('reconciles local files against the index: extras removed, missing ones downloaded when read', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant()
    let tl = tenant.createTimeline(0x100)
    const lsns = await threeLayers(tl)
    const before = await readAll(tl, lsns)
    const files = tl.layerInfo().map((l) => l.file!)
    expect(files).toHaveLength(3)
    await repo.close()

    const dir = path.join(repo.dir, 'tenants', tenant.tenantId, 'timelines', tl.timelineId)
    const extra = formatLayerName({
      kind: 'delta',
      keyStart: KEY_MIN,
      keyEnd: KEY_MAX,
      lsnStart: 0x100,
      lsnEnd: 0x200,
    })
    writeFileSync(path.join(dir, extra), Buffer.alloc(8192, 1))
    const missing = files[1]
    rmSync(path.join(dir, missing))

    repo = await s.open()
    tl = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    expect(existsSync(path.join(dir, extra))).toBe(false)
    expect(
      s.lines.some(
        (l) => l.msg === 'removing local layer the remote index does not list' && l.fields?.layer === extra,
      ),
    ).toBe(true)
    const local = () => Object.fromEntries(tl.layerInfo().map((l) => [l.file, l.local]))
    expect(local()).toEqual({ [files[0]]: true, [missing]: false, [files[2]]: true })
    const layer = tl.layers.layers.find((l) => l.path.endsWith(missing))!
    expect(() => layer.reader()).toThrow(LayerNotLocalError)

    expect(await readAll(tl, lsns)).toEqual(before)
    expect(local()[missing]).toBe(true)
    expect(existsSync(path.join(dir, missing))).toBe(true)
    expect(s.downloads().map((l) => l.fields?.layer)).toEqual([missing])
    expect(s.downloads()[0].fields?.bytes).toBeGreaterThan(0)
    expect(tempLeftovers(dir)).toEqual([])
  })

  it('gets a wiped tenant back from storage with its branch; only the layers read are downloaded', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant()
    const main = tenant.createTimeline(0x100)
    const mainLsns = await threeLayers(main)
    const branch = tenant.branch(main.timelineId)
    const branchLsns = await threeLayers(branch)
    const before = {
      main: await readAll(main, mainLsns),
      branch: await readAll(branch, [...mainLsns, ...branchLsns]),
    }
    const ids = { tenant: tenant.tenantId, main: main.timelineId, branch: branch.timelineId }
    await repo.close()
    rmSync(repo.dir, { recursive: true, force: true })

    repo = await s.open('repo', {
      locations: new Map([[ids.tenant, { generation: 2, mode: 'AttachedSingle' }]]),
    })
    const t = repo.tenant(ids.tenant)
    expect(t.generation).toBe(2)
    const m = t.timeline(ids.main)
    const b = t.timeline(ids.branch)
    expect(b.ancestor).toBe(m)
    expect([m, b].flatMap((tl) => tl.layerInfo().map((l) => l.local))).toEqual(Array(6).fill(false))
    expect(m.lastRecordLsn).toBe(mainLsns[2])

    // The newest main layer holds every key at its last LSN: one download answers a read there.
    // Two reads at once that need the same layer share its one download.
    await Promise.all([
      withLocalLayers(() => m.get(key(3), mainLsns[2])),
      withLocalLayers(() => m.get(key(4), mainLsns[2])),
    ])
    expect(s.downloads()).toHaveLength(1)
    expect(m.layerInfo().filter((l) => l.local)).toHaveLength(1)

    expect(await readAll(b, [...mainLsns, ...branchLsns])).toEqual(before.branch)
    expect(await readAll(m, mainLsns)).toEqual(before.main)
    // A branch read below its branch point fetched the ancestor's layers, by the ancestor's keys.
    const keys = s.downloads().map((l) => l.fields?.key as string)
    expect(keys.filter((k) => k.includes(ids.main))).toHaveLength(3)
    expect(keys.filter((k) => k.includes(ids.branch))).toHaveLength(3)
    expect(keys.every((k) => k.endsWith('-00000001'))).toBe(true)
    // The new generation writes its own index.
    await m.uploads!.flush()
    expect(await s.objects(m)).toContain(indexKey(ids.tenant, ids.main, 2))
  })

  it('a second pageserver attaches with generation+1 while the first, stale, writes and deletes nothing', async () => {
    const s = setup()
    const a = await s.open('a')
    const tenant = a.createTenant()
    const tlA = tenant.createTimeline(0x100)
    const lsns = await threeLayers(tlA)
    const before = await readAll(tlA, lsns)
    await a.setLocation(tenant.tenantId, { generation: 1, mode: 'AttachedStale' })
    expect(tenant.mode).toBe('AttachedStale')

    const b = await s.open('b')
    const t2 = await b.attachTenant(tenant.tenantId, { generation: 2, mode: 'AttachedMulti' })
    const tlB = t2.timeline(tlA.timelineId)
    expect(await readAll(tlB, lsns)).toEqual(before)
    await tlB.uploads!.flush()
    const stored = await s.objects(tlA)
    expect(stored).toContain(indexKey(tenant.tenantId, tlA.timelineId, 2))

    // The stale one ingests, flushes and compacts locally: its uploads and deletions are held.
    lsns.push(writePages(tlA, 7))
    await tlA.checkpoint()
    const { compaction } = await tenant.compact(tlA, true)
    expect(compaction?.inputs).toBe(4)
    await sleep(200)
    expect(tlA.uploads!.pending).toBeGreaterThan(0)
    expect(tlA.remoteConsistentLsn).toBe(lsns[2])
    expect(await withLocalLayers(() => tlA.get(key(0), lsns[3]))).not.toBeNull()
    await expect(a.setLocation(tenant.tenantId, { generation: 0, mode: 'AttachedSingle' })).rejects.toThrow(
      /generation 0 is older/,
    )
    await a.close()
    expect(await s.objects(tlA)).toEqual(stored)
  })

  it('deletes at start what a stop left undeleted', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant({ config: { compaction_target_size: '1 MiB' } })
    let tl = tenant.createTimeline(0x100)
    await threeLayers(tl)
    const l0 = tl.layerInfo().map((l) => l.file!)
    s.storage.failDeletes = true
    await tenant.compact(tl, true)
    // The index without the L0s is uploaded before their deletion is tried.
    await waitUntil('a deletion attempt', () => s.storage.deleteAttempts > 0, 5000)
    await repo.close({ flush: false })
    const stored = async () =>
      (await s.objects(tl))
        .map((k) => parseRemoteKey(k))
        .flatMap((k) => (k?.kind === 'layer' ? [k.layer] : []))
    expect(await stored()).toEqual(expect.arrayContaining(l0))

    s.storage.failDeletes = false
    repo = await s.open()
    tl = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    await tl.uploads!.flush()
    const left = await stored()
    expect(left.filter((n) => l0.includes(n))).toEqual([])
    expect(left.sort()).toEqual(
      tl
        .layerInfo()
        .map((l) => l.file!)
        .sort(),
    )
  })

  it('detaches: the directory goes and the remote index covers everything ingested; uploads that cannot finish refuse it', async () => {
    const s = setup()
    const repo = await s.open()
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    await threeLayers(tl)
    const last = writePages(tl, 9)

    s.storage.failLayerPuts = true
    await expect(repo.detachTenant(tenant.tenantId, { uploadTimeoutMs: 300 })).rejects.toThrow(
      /cannot be detached: not uploaded after 300 ms: upload of .* of timeline/,
    )
    expect(existsSync(tenant.dir)).toBe(true)
    expect(repo.tenant(tenant.tenantId)).toBe(tenant)

    s.storage.failLayerPuts = false
    await repo.detachTenant(tenant.tenantId)
    expect(existsSync(tenant.dir)).toBe(false)
    expect(() => repo.tenant(tenant.tenantId)).toThrow(/not found/)
    const key1 = indexKey(tenant.tenantId, tl.timelineId, 1)
    const index = decodeIndexPart(await s.storage.get(key1), key1)
    expect(index.metadata.diskConsistentLsn).toBe(last)
    expect(Object.keys(index.layers)).toHaveLength(4)
  })

  it('a truncated layer object fails the read with its key and leaves nothing half written', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant()
    let tl = tenant.createTimeline(0x100)
    const lsns = await threeLayers(tl)
    await repo.close()
    rmSync(repo.dir, { recursive: true, force: true })

    repo = await s.open('repo', {
      locations: new Map([[tenant.tenantId, { generation: 2, mode: 'AttachedSingle' }]]),
    })
    tl = repo.tenant(tenant.tenantId).timeline(tl.timelineId)
    const newest = tl.layers.layers[0]
    const objKey = layerKey(tenant.tenantId, tl.timelineId, path.basename(newest.path), 1)
    truncateSync(path.join(s.storage.root, ...objKey.split('/')), 100)
    await expect(withLocalLayers(() => tl.get(key(0), lsns[2]))).rejects.toThrow(objKey)
    expect(newest.isLocal).toBe(false)
    expect(readdirSync(tl.dir).filter((n) => n !== 'metadata')).toEqual([])
  })

  it('refuses an unreadable index by its key, and attaching a tenant present or absent', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant()
    const tl = tenant.createTimeline(0x100)
    await threeLayers(tl)
    await expect(
      repo.attachTenant(tenant.tenantId, { generation: 2, mode: 'AttachedSingle' }),
    ).rejects.toThrow(/already exists/)
    await expect(
      repo.attachTenant('ab'.repeat(16), { generation: 2, mode: 'AttachedSingle' }),
    ).rejects.toThrow(/no timeline in remote storage/)
    expect(existsSync(path.join(repo.dir, 'tenants', 'ab'.repeat(16)))).toBe(false)
    await repo.close()
    const ik = indexKey(tenant.tenantId, tl.timelineId, 1)
    writeFileSync(path.join(s.storage.root, ...ik.split('/')), '{"version": 1')
    repos.splice(0)
    await expect(s.open()).rejects.toThrow(ik)
    repo = await s.open('other')
    expect(repo.tenants()).toEqual([])
  })

  it('a secondary location serves nothing, downloads every layer, and serves from local disk once attached', async () => {
    const s = setup()
    const a = await s.open('a')
    const tenant = a.createTenant()
    const tlA = tenant.createTimeline(0x100)
    const lsns = await threeLayers(tlA)
    const before = await readAll(tlA, lsns)

    const b = await s.open('b')
    await b.attachTenant(tenant.tenantId, { generation: 2, mode: 'Secondary' })
    expect(() => b.tenant(tenant.tenantId)).toThrow(/is a Secondary location here \(generation 2\)/)
    const tlB = b.anyTenant(tenant.tenantId).timeline(tlA.timelineId)
    await waitUntil('the secondary to be warm', () => tlB.layerInfo().every((l) => l.local), 5000)
    expect(s.downloads()).toHaveLength(3)
    // A secondary uploads nothing, not even an index of its generation.
    expect(await s.objects(tlA)).not.toContain(indexKey(tenant.tenantId, tlA.timelineId, 2))

    await b.setLocation(tenant.tenantId, { generation: 2, mode: 'AttachedSingle' })
    expect(await readAll(b.tenant(tenant.tenantId).timeline(tlA.timelineId), lsns)).toEqual(before)
    expect(s.downloads()).toHaveLength(3)
    await tlB.uploads!.flush()
    expect(await s.objects(tlA)).toContain(indexKey(tenant.tenantId, tlA.timelineId, 2))
  })

  it('compacts and creates images from remote-only layers, downloading them first', async () => {
    const s = setup()
    let repo = await s.open()
    const tenant = repo.createTenant({ config: { compaction_target_size: '1 MiB' } })
    let tl = tenant.createTimeline(0x100)
    const lsns = await threeLayers(tl)
    const before = await readAll(tl, [lsns[2]])
    await repo.close()
    rmSync(repo.dir, { recursive: true, force: true })

    repo = await s.open('repo', {
      locations: new Map([[tenant.tenantId, { generation: 2, mode: 'AttachedSingle' }]]),
    })
    const t = repo.tenant(tenant.tenantId)
    tl = t.timeline(tl.timelineId)
    const { compaction, images } = await t.compact(tl, true)
    expect(compaction?.inputs).toBe(3)
    expect(images.created).toBeGreaterThan(0)
    expect(s.downloads()).toHaveLength(3)
    expect(tl.layerInfo().every((l) => l.local)).toBe(true)
    expect(await readAll(tl, [lsns[2]])).toEqual(before)
  })
})
