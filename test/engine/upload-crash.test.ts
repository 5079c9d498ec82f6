/**
 * Kill -9 while a repository ingests and uploads to remote storage (a local directory, and S3 against
 * moto_server): flushes, layer uploads, index uploads, compaction and remote deletions all run all the
 * time. After each kill, before anything reopens it, the newest remote index is consistent: every layer
 * it lists is an object of the listed size whose header, index blocks and every value pass their CRCs,
 * and its disk_consistent_lsn is at least the last remote_consistent_lsn the process reported. A tenant
 * attached from storage alone (the next generation, a fresh directory) reads every key back as the
 * history says up to there. Then the next trial reopens the original directory (reconciled against the
 * index) under a newer generation and goes on. One case kills in the middle of a large layer's upload:
 * the half-written temp object is never listed, nor taken for a layer.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withLocalLayers } from '../../src/engine/layer-download.js'
import { LayerFileReader } from '../../src/engine/layer-file.js'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { PageCache } from '../../src/engine/page-cache.js'
import { type LoadedIndex, loadRemoteIndex } from '../../src/engine/remote-index.js'
import { layerKey, parseRemoteKey, timelinePrefix } from '../../src/engine/remote-layout.js'
import type { RemoteStorage } from '../../src/engine/remote-storage.js'
import { Repository, type RepositoryOptions } from '../../src/engine/repository.js'
import { TEMP_SUFFIX } from '../../src/lib/durable-fs.js'
import { S3Storage } from '../../src/pageserver/s3-storage.js'
import { expectedAt, FIRST_LSN, KEYS, keyOf } from '../harness/crash-workload.js'
import { testRedo } from '../harness/engine.js'
import { runUntilKilled } from '../harness/kill-child.js'
import { type Moto, startMoto } from '../harness/moto.js'
import { randomInt } from '../harness/random.js'
import type { ChildOptions, StorageSpec } from './upload-crash-child.js'

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'upload-crash-child.ts')
/** The LSN from which every key holds a page: reads below it are not compared. */
const ALL_KEYS_WRITTEN = FIRST_LSN + 8 * KEYS
const BACKOFF = { baseMs: 10, maxMs: 100 }
/** Small layers: flushes, uploads, compaction and deletions all the time. */
const BUSY = {
  config: {
    checkpoint_distance: 64 * 1024,
    compaction_target_size: 256 * 1024,
    compaction_threshold: 3,
    image_creation_threshold: 2,
    compaction_period: '50 ms',
    gc_period: '0 s',
  },
  child: { memoryBudget: 1 << 20, checkpointEvery: 2000 } satisfies ChildOptions,
}
/** One large layer per explicit checkpoint, nothing flushed or compacted in between. */
const LARGE = {
  config: { checkpoint_distance: 512 * 1024 * 1024, compaction_period: '0 s', gc_period: '0 s' },
  child: { memoryBudget: 512 * 1024 * 1024, checkpointEvery: 30_000 } satisfies ChildOptions,
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'zenith-upload-crash-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
let dirs = 0
const freshDir = (what: string) => mkdtempSync(path.join(scratch, `${what}-${++dirs}-`))

interface Remote {
  storage: RemoteStorage
  spec: StorageSpec
}

interface Subject {
  remote: Remote
  dir: string
  tenantId: string
  timelineId: string
  generation: number
}

const repoOptions = (remote: Remote, more: Partial<RepositoryOptions> = {}): RepositoryOptions => ({
  redo: testRedo(),
  background: false,
  remote: { storage: remote.storage, backoff: BACKOFF },
  ...more,
})

/** A repository with one timeline (no layers yet, so nothing in storage) for the children to fill. */
async function subject(remote: Remote, config: Record<string, unknown>): Promise<Subject> {
  const dir = freshDir('repo')
  const repo = await Repository.open(dir, repoOptions(remote))
  const tenant = repo.createTenant({ config })
  const tl = tenant.createTimeline(FIRST_LSN)
  await repo.close()
  return { remote, dir, tenantId: tenant.tenantId, timelineId: tl.timelineId, generation: tenant.generation }
}

const childArgs = (s: Subject, opts: ChildOptions) => [
  s.dir,
  JSON.stringify(s.remote.spec),
  s.tenantId,
  s.timelineId,
  String(s.generation),
  JSON.stringify(opts),
]

/** The last remote_consistent_lsn a child printed (0: it printed none). */
const printedRcl = (last: Map<string, string>) => Number(last.get('rcl') ?? 0)

/**
 * What a kill left in storage, looked at before anything reopens it: the newest index of the child's
 * generation or older is consistent and covers `rcl`. Returns the index (null when the child was killed
 * before its first) and how many layer objects it does not list (uploads whose index never came,
 * deletions that never ran).
 */
async function checkRemote(
  s: Subject,
  rcl: number,
): Promise<{ loaded: LoadedIndex | null; garbage: number }> {
  const { storage } = s.remote
  // Nothing but layers and indexes is listed: no temp object of an interrupted upload.
  for (const o of await storage.list(timelinePrefix(s.tenantId, s.timelineId)))
    expect(parseRemoteKey(o.key), o.key).not.toBeNull()
  const loaded = await loadRemoteIndex(storage, s.tenantId, s.timelineId, s.generation)
  if (!loaded) {
    expect(rcl, 'remote_consistent_lsn printed without an index in storage').toBe(0)
    return { loaded, garbage: 0 }
  }
  const sizes = new Map(loaded.objects.map((o) => [o.key, o.size]))
  const cache = new PageCache(64)
  const dir = freshDir('layers')
  for (const [name, l] of Object.entries(loaded.index.layers)) {
    const key = layerKey(s.tenantId, s.timelineId, name, l.generation)
    expect(sizes.get(key), `${loaded.key} lists ${key}`).toBe(l.fileSize)
    // The reader checks that the file is named for what its header describes. Not fsynced: scratch.
    const file = path.join(dir, name)
    writeFileSync(file, await storage.get(key))
    const reader = LayerFileReader.open(file, cache)
    try {
      reader.verify()
      let entries = 0
      for (const _ of reader.entries()) entries++
      expect({ key, entries, tl: reader.summary.timelineId }).toEqual({
        key,
        entries: reader.summary.entries,
        tl: s.timelineId,
      })
    } finally {
      reader.close()
    }
    rmSync(file)
  }
  rmSync(dir, { recursive: true })
  expect(loaded.index.metadata.diskConsistentLsn).toBeGreaterThanOrEqual(rcl)
  const listed = new Set(
    Object.entries(loaded.index.layers).map(([n, l]) => layerKey(s.tenantId, s.timelineId, n, l.generation)),
  )
  const garbage = loaded.objects.filter((o) => parseRemoteKey(o.key)?.kind === 'layer' && !listed.has(o.key))
  return { loaded, garbage: garbage.length }
}

/**
 * Attaches the tenant from storage alone into a fresh directory, with the next generation, and reads
 * every key at each of `lsns` (those below ALL_KEYS_WRITTEN skipped); then lets the attachment upload
 * its own index and delete the garbage, and takes its generation for the next child.
 */
async function checkAttach(s: Subject, dcl: number, lsns: number[]): Promise<void> {
  const dir = freshDir('attach')
  const generation = s.generation + 1
  const repo = await Repository.open(
    dir,
    repoOptions(s.remote, { locations: new Map([[s.tenantId, { generation, mode: 'AttachedSingle' }]]) }),
  )
  try {
    const tl = repo.tenant(s.tenantId).timeline(s.timelineId)
    expect(tl.lastRecordLsn).toBe(dcl)
    for (const at of lsns) {
      if (at < ALL_KEYS_WRITTEN) continue
      const want = expectedAt(at)
      for (let k = 0; k < KEYS; k++) {
        const got = await withLocalLayers(() => tl.get(keyOf(k), at))
        if (!got?.equals(want[k]))
          expect({ at, k, got: got?.toString('hex') }).toEqual({ at, k, got: want[k].toString('hex') })
      }
    }
    await tl.uploads!.flush()
  } finally {
    await repo.close({ flush: false })
    rmSync(dir, { recursive: true, force: true })
  }
  s.generation = generation + 1
}

/**
 * `trials` kills of children over one repository at random moments after they are ready; checks each
 * as above. Returns what the kills left: unlisted objects per trial, and the last index's dcl.
 */
async function killRepeatedly(s: Subject, trials: number, seed: number, maxKillMs: number) {
  const next = randomInt(seed)
  const garbage: number[] = []
  let remoteDcl = 0
  for (let trial = 0; trial < trials; trial++) {
    const killAfter = 300 + next(maxKillMs)
    const { last } = await runUntilKilled(CHILD, childArgs(s, BUSY.child), (what, _, kill) => {
      if (what === 'ready') setTimeout(kill, killAfter)
    })
    const rcl = printedRcl(last)
    const { loaded, garbage: g } = await checkRemote(s, rcl)
    garbage.push(g)
    if (!loaded) continue
    const dcl = loaded.index.metadata.diskConsistentLsn
    // An index never goes back: each generation starts from the newest one before it.
    expect(dcl, `trial ${trial}`).toBeGreaterThanOrEqual(remoteDcl)
    remoteDcl = dcl
    const between = ALL_KEYS_WRITTEN + next(Math.max(1, dcl - ALL_KEYS_WRITTEN))
    await checkAttach(
      s,
      dcl,
      [dcl, rcl, between].filter((at) => at <= dcl),
    )
  }
  return { garbage, remoteDcl }
}

describe('crash during upload', () => {
  it('local directory: 12 SIGKILLs at random moments leave a consistent remote index covering remote_consistent_lsn', async () => {
    const remote = (root: string): Remote => ({ storage: new LocalFsStorage(root), spec: { fs: root } })
    const s = await subject(remote(freshDir('remote')), BUSY.config)
    const { garbage, remoteDcl } = await killRepeatedly(s, 12, 4242, 1500)
    // Kills landed between a layer's upload and the index listing it, or before a deletion.
    expect(garbage.some((n) => n > 0)).toBe(true)
    expect(remoteDcl).toBeGreaterThan(ALL_KEYS_WRITTEN * 4)
  }, 120_000)

  it('local directory: a kill in the middle of a large layer upload leaves its temp object unlisted', async () => {
    const root = freshDir('remote')
    const s = await subject({ storage: new LocalFsStorage(root), spec: { fs: root } }, LARGE.config)
    const tlDir = path.join(root, ...timelinePrefix(s.tenantId, s.timelineId).split('/'))
    const temps = () => {
      try {
        return readdirSync(tlDir).filter((n) => n.includes(TEMP_SUFFIX))
      } catch {
        return []
      }
    }
    let caught: { key: string; size: number; temp: string } | null = null
    let rcl = 0
    for (let attempt = 0; attempt < 4 && !caught; attempt++) {
      let uploading: { key: string; size: number } | null = null
      let poll: NodeJS.Timeout | undefined
      const { last } = await runUntilKilled(CHILD, childArgs(s, LARGE.child), (what, value, kill) => {
        if (what === 'rcl') rcl = Number(value)
        // A large layer after the first index, so that there is an index to check and attach from.
        if (what !== 'upload' || uploading || rcl === 0) return
        const [key, size] = value.split(' ')
        if (Number(size) < 4 * 1024 * 1024) return
        uploading = { key, size: Number(size) }
        // As soon as the temp object is there, the upload is mid-write.
        poll = setInterval(() => {
          if (temps().length > 0) kill()
        }, 1)
      })
      clearInterval(poll)
      rcl = printedRcl(last)
      const left = temps()
      if (uploading && left.length > 0)
        caught = { ...(uploading as { key: string; size: number }), temp: left[0] }
    }
    expect(caught, 'no kill landed while a large layer was being written').not.toBeNull()
    const { key, temp } = caught!
    expect(temp.startsWith(path.basename(key))).toBe(true)
    const { loaded } = await checkRemote(s, rcl)
    expect(loaded).not.toBeNull()
    const keys = (await s.remote.storage.list(timelinePrefix(s.tenantId, s.timelineId))).map((o) => o.key)
    expect(keys).not.toContain(key)
    const layer = parseRemoteKey(key)
    expect(layer?.kind).toBe('layer')
    if (layer?.kind === 'layer') expect(loaded!.index.layers[layer.layer]).toBeUndefined()
    const dcl = loaded!.index.metadata.diskConsistentLsn
    await checkAttach(s, dcl, [dcl, rcl])

    // The original directory reopens against the index and uploads past it.
    const again = await runUntilKilled(
      CHILD,
      childArgs(s, BUSY.child),
      (what, value, kill) => {
        if (what === 'rcl' && Number(value) > dcl) kill()
      },
      20_000,
    )
    await checkRemote(s, printedRcl(again.last))
  }, 60_000)

  describe('S3 (moto)', () => {
    let moto: Moto
    beforeAll(async () => {
      moto = await startMoto()
    }, 40_000)
    afterAll(async () => {
      await moto?.stop()
    })

    it('3 SIGKILLs at random moments leave a consistent remote index covering remote_consistent_lsn', async () => {
      const s3 = { ...moto.s3, prefix: 'upload-crash' }
      const storage = new S3Storage(s3)
      try {
        const s = await subject({ storage, spec: { s3 } }, BUSY.config)
        const { remoteDcl } = await killRepeatedly(s, 3, 777, 1500)
        expect(remoteDcl).toBeGreaterThan(ALL_KEYS_WRITTEN)
      } finally {
        storage.close()
      }
    }, 60_000)
  })
})
