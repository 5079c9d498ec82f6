import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EngineStateError } from '../../src/engine/errors.js'
import { decodeIndexPart, type IndexMetadata } from '../../src/engine/index-part.js'
import { KEY_MAX, KEY_MIN } from '../../src/engine/key.js'
import { formatLayerName } from '../../src/engine/layer-name.js'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { loadRemoteIndex } from '../../src/engine/remote-index.js'
import { indexKey, layerKey, parseRemoteKey } from '../../src/engine/remote-layout.js'
import { RemoteStorageError } from '../../src/engine/remote-storage.js'
import { UploadQueue, type UploadQueueOptions } from '../../src/engine/upload-queue.js'
import { sleep, waitUntil } from '../harness/wait.js'

const T = '0123456789abcdef0123456789abcdef'
const TL = 'fedcba9876543210fedcba9876543210'

/**
 * Real local-directory storage that can hold back or fail chosen operations, and checks the queue's
 * contract on every write: an index put lists only layers already stored, and a deletion removes only
 * layers the stored index no longer lists.
 */
class ScriptedStorage extends LocalFsStorage {
  /** Operations in the order they completed: `put <name>`, `delete <name>`. */
  readonly done: string[] = []
  readonly violations: string[] = []
  private gates: { match: string; open: Promise<void> }[] = []
  private readonly failures = new Map<string, number>()
  private readonly releases: (() => void)[] = []

  /** Holds back operations on keys containing `match` until the returned function is called. */
  releaseAll(): void {
    for (const release of this.releases.splice(0)) release()
  }

  hold(match: string): () => void {
    let release!: () => void
    const gate = { match, open: new Promise<void>((r) => (release = r)) }
    this.gates.push(gate)
    const open = () => {
      this.gates = this.gates.filter((g) => g !== gate)
      release()
    }
    this.releases.push(open)
    return open
  }

  /** Fails the next `times` operations on keys containing `match`. */
  fail(match: string, times: number): void {
    this.failures.set(match, times)
  }

  private async before(key: string): Promise<void> {
    for (const g of this.gates) if (key.includes(g.match)) await g.open
    for (const [match, n] of this.failures) {
      if (n > 0 && key.includes(match)) {
        this.failures.set(match, n - 1)
        throw new RemoteStorageError(`injected failure of ${key}`)
      }
    }
  }

  private storedIndexLayers(): Record<string, unknown> {
    const key = indexKey(T, TL, 1)
    const file = path.join(this.root, ...key.split('/'))
    return existsSync(file) ? decodeIndexPart(readFileSync(file), key).layers : {}
  }

  override async put(key: string, body: Buffer): Promise<void> {
    await this.before(key)
    const k = parseRemoteKey(key)
    if (k?.kind === 'index') {
      for (const [name, l] of Object.entries(decodeIndexPart(body, key).layers)) {
        const file = path.join(this.root, ...layerKey(T, TL, name, l.generation).split('/'))
        if (!existsSync(file)) this.violations.push(`index put before layer ${name}`)
      }
    }
    await super.put(key, body)
    this.done.push(`put ${k?.kind === 'layer' ? k.layer : 'index'}`)
  }

  /** Layer uploads running now, and the most that ever ran at once. */
  inFlight = 0
  maxInFlight = 0

  override async putFile(key: string, localPath: string): Promise<void> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight)
    try {
      await this.before(key)
      await super.putFile(key, localPath)
    } finally {
      this.inFlight--
    }
    const k = parseRemoteKey(key)
    this.done.push(`put ${k?.kind === 'layer' ? k.layer : key}`)
  }

  override async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.before(key)
    const listed = this.storedIndexLayers()
    for (const key of keys) {
      const k = parseRemoteKey(key)
      if (k?.kind === 'layer' && k.layer in listed) this.violations.push(`deleted ${k.layer} while listed`)
    }
    await super.delete(keys)
    for (const key of keys) {
      const k = parseRemoteKey(key)
      this.done.push(`delete ${k?.kind === 'layer' ? k.layer : key}`)
    }
  }
}

const dirs: string[] = []
const queues: UploadQueue[] = []
const storages: ScriptedStorage[] = []
afterEach(async () => {
  for (const s of storages.splice(0)) s.releaseAll()
  for (const q of queues.splice(0)) await q.shutdown()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function setup(opts: Partial<UploadQueueOptions> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-upload-queue-'))
  dirs.push(dir)
  const storage = new ScriptedStorage(path.join(dir, 'remote'))
  storages.push(storage)
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
  const open = (more: Partial<UploadQueueOptions> = {}) => {
    const q = new UploadQueue({
      storage,
      tenantId: T,
      timelineId: TL,
      generation: 1,
      index: null,
      log: (level, msg, fields) => lines.push({ level, msg, fields }),
      backoff: { baseMs: 5, maxMs: 20 },
      ...opts,
      ...more,
    })
    queues.push(q)
    return q
  }
  /** A local layer file `i` of `size` bytes; returns its name, path and size. */
  const layer = (i: number, size = 1000) => {
    const name = formatLayerName({
      kind: 'delta',
      keyStart: KEY_MIN,
      keyEnd: KEY_MAX,
      lsnStart: 0x1000 * i,
      lsnEnd: 0x1000 * (i + 1),
    })
    const file = path.join(dir, name)
    writeFileSync(file, Buffer.alloc(size, i))
    return { name, file, size }
  }
  const stored = (name: string) => existsSync(path.join(storage.root, ...layerKey(T, TL, name, 1).split('/')))
  const storedIndex = () => {
    const key = indexKey(T, TL, 1)
    const file = path.join(storage.root, ...key.split('/'))
    return existsSync(file) ? decodeIndexPart(readFileSync(file), key) : null
  }
  return { dir, storage, lines, open, layer, stored, storedIndex }
}

const meta = (lsn: number): IndexMetadata => ({
  diskConsistentLsn: lsn,
  prevRecordLsn: null,
  ancestorTimeline: null,
  ancestorLsn: 0,
  latestGcCutoffLsn: 0,
  initdbLsn: 0x100,
  pgVersion: 15,
})

const listing = (...layers: { name: string; size: number }[]) => new Map(layers.map((l) => [l.name, l.size]))

/** Waits for the queue's flush, failing the test after 5 s instead of hanging it. */
async function flushed(q: UploadQueue): Promise<void> {
  if (!(await settlesWithin(q.flush(), 5000))) throw new Error('upload queue flush did not finish within 5 s')
}

/** Resolves false if `p` has not settled after `ms`. */
const settlesWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])

describe('upload queue', () => {
  it('uploads an index only after every layer it lists, and layers in parallel', async () => {
    const s = setup()
    const q = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    const releaseA = s.storage.hold(a.name)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(a, b), meta(0x3000))
    // b passes a while a is held; the index waits for a.
    await waitUntil('layer b uploaded', () => s.stored(b.name), 5000)
    expect(await settlesWithin(q.flush(), 200)).toBe(false)
    expect(s.storedIndex()).toBeNull()
    expect(q.remoteConsistentLsn).toBe(0)
    releaseA()
    await flushed(q)
    expect(s.storage.done).toEqual([`put ${b.name}`, `put ${a.name}`, 'put index'])
    expect(s.storedIndex()!.layers).toEqual({
      [a.name]: { fileSize: 1000, generation: 1 },
      [b.name]: { fileSize: 1000, generation: 1 },
    })
    expect(q.remoteConsistentLsn).toBe(0x3000)
    expect(s.storage.violations).toEqual([])
    expect(s.lines.map((l) => l.msg)).toEqual(['layer uploaded', 'layer uploaded', 'index uploaded'])
    expect(s.lines[2].fields).toMatchObject({ layers: 2, disk_consistent_lsn: '0/3000' })
    expect(s.lines[2].fields!.ms).toBeTypeOf('number')
  })

  it('runs at most 4 layer uploads at a time', async () => {
    const s = setup()
    const q = s.open()
    const release = s.storage.hold('__')
    const layers = [1, 2, 3, 4, 5, 6].map((i) => s.layer(i))
    for (const l of layers) q.scheduleLayer(l.name, l.file, l.size)
    q.scheduleIndex(listing(...layers), meta(0x7000))
    await waitUntil('4 uploads running', () => s.storage.inFlight === 4, 5000)
    await new Promise((r) => setTimeout(r, 100))
    expect(s.storage.inFlight).toBe(4)
    release()
    await flushed(q)
    expect(s.storage.maxInFlight).toBe(4)
    expect(Object.keys(s.storedIndex()!.layers)).toHaveLength(6)
  })

  it('holds deletions as AttachedMulti and every op as AttachedStale, and runs them when the mode allows', async () => {
    const s = setup()
    const q = s.open({ mode: 'AttachedMulti' })
    const a = s.layer(1)
    const b = s.layer(2)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    await flushed(q)
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(b), meta(0x3000))
    q.scheduleDelete([a.name])
    await waitUntil(
      'the index listing b',
      () => Object.keys(s.storedIndex()?.layers ?? {}).includes(b.name),
      5000,
    )
    expect(await settlesWithin(q.flush(), 200)).toBe(false)
    expect(s.stored(a.name)).toBe(true)
    q.setMode('AttachedStale')
    const c = s.layer(3)
    q.scheduleLayer(c.name, c.file, c.size)
    q.scheduleIndex(listing(b, c), meta(0x4000))
    await sleep(200)
    expect(s.stored(c.name)).toBe(false)
    expect(s.stored(a.name)).toBe(true)
    expect(q.remoteConsistentLsn).toBe(0x3000)
    q.setMode('AttachedSingle')
    await flushed(q)
    expect(s.stored(a.name)).toBe(false)
    expect(s.stored(c.name)).toBe(true)
    expect(q.remoteConsistentLsn).toBe(0x4000)
    expect(s.storage.violations).toEqual([])
  })

  it('deletes a layer only after an uploaded index no longer lists it', async () => {
    const s = setup()
    const q = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    await flushed(q)
    const releaseIndex = s.storage.hold('index_part')
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(b), meta(0x3000))
    q.scheduleDelete([a.name])
    await waitUntil('layer b uploaded', () => s.stored(b.name), 5000)
    expect(await settlesWithin(q.flush(), 200)).toBe(false)
    expect(s.stored(a.name)).toBe(true)
    releaseIndex()
    await flushed(q)
    expect(s.stored(a.name)).toBe(false)
    expect(s.storage.done.slice(-2)).toEqual(['put index', `delete ${a.name}`])
    expect(Object.keys(s.storedIndex()!.layers)).toEqual([b.name])
    expect(s.storage.violations).toEqual([])
  })

  it('retries every kind of operation after failures until it succeeds', async () => {
    const s = setup()
    const q = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    s.storage.fail(a.name, 3)
    s.storage.fail('index_part', 2)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(a, b), meta(0x3000))
    await flushed(q)
    q.scheduleIndex(listing(b), meta(0x3000))
    q.scheduleDelete([a.name])
    s.storage.fail(a.name, 2)
    await flushed(q)
    expect(s.stored(a.name)).toBe(false)
    expect(Object.keys(s.storedIndex()!.layers)).toEqual([b.name])
    const retries = s.lines.filter((l) => l.msg.endsWith('failed, will retry'))
    expect(retries.map((l) => l.msg)).toEqual([
      ...Array(3).fill(`upload of layer ${a.name} failed, will retry`),
      ...Array(2).fill('upload of the index failed, will retry'),
      ...Array(2).fill('deletion of remote layers failed, will retry'),
    ])
    expect(retries.map((l) => l.fields!.retry_in_ms).slice(0, 3)).toEqual([5, 10, 20])
    expect(s.storage.violations).toEqual([])
  })

  it('coalesces waiting indexes to the newest ready one, and never lets one overtake another', async () => {
    const s = setup()
    const q = s.open()
    const [a, b, c] = [s.layer(1), s.layer(2), s.layer(3)]
    const releaseA = s.storage.hold(a.name)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(a, b), meta(0x3000))
    q.scheduleLayer(c.name, c.file, c.size)
    q.scheduleIndex(listing(a, b, c), meta(0x4000))
    await waitUntil('b and c uploaded', () => s.stored(b.name) && s.stored(c.name), 5000)
    releaseA()
    await flushed(q)
    expect(s.storage.done.filter((d) => d === 'put index')).toHaveLength(1)
    expect(Object.keys(s.storedIndex()!.layers).sort()).toEqual([a.name, b.name, c.name].sort())
    expect(q.remoteConsistentLsn).toBe(0x4000)

    // An index being uploaded is not overtaken: the ones after it wait, and the newest goes last.
    const releaseIndex = s.storage.hold('index_part')
    q.scheduleIndex(listing(a), meta(0x5000))
    await waitUntil('index upload started', () => q.pending === 1, 5000)
    q.scheduleIndex(listing(a, b), meta(0x6000))
    q.scheduleIndex(listing(a, b, c), meta(0x7000))
    await new Promise((r) => setTimeout(r, 100))
    expect(s.storage.done.filter((d) => d === 'put index')).toHaveLength(1)
    releaseIndex()
    await flushed(q)
    expect(s.storage.done.filter((d) => d === 'put index')).toHaveLength(3)
    expect(s.storedIndex()!.metadata.diskConsistentLsn).toBe(0x7000)
    expect(q.remoteConsistentLsn).toBe(0x7000)
    expect(s.storage.violations).toEqual([])
  })

  it('does not upload a layer removed locally before its upload; the index that drops it goes instead', async () => {
    const s = setup()
    const q = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    const releaseA = s.storage.hold(a.name)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    // Compaction replaced a with b and removed a's file.
    rmSync(a.file)
    releaseA()
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(b), meta(0x3000))
    q.scheduleDelete([a.name])
    await flushed(q)
    expect(s.stored(a.name)).toBe(false)
    expect(s.storage.done).toEqual([`put ${b.name}`, 'put index'])
    expect(Object.keys(s.storedIndex()!.layers)).toEqual([b.name])
    expect(s.lines.some((l) => l.msg === 'layer removed locally before its upload: not uploaded')).toBe(true)
    expect(s.storage.violations).toEqual([])
  })

  it('shuts down while storage keeps failing: retries stop, flush rejects, nothing more is accepted', async () => {
    const s = setup()
    const q = s.open()
    const a = s.layer(1)
    s.storage.fail(a.name, 1_000_000)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    const flush = q.flush()
    const rejected = expect(flush).rejects.toThrow(/shut down with 2 operations not done/)
    await waitUntil(
      'a few retries',
      () => s.lines.filter((l) => l.msg.includes('will retry')).length >= 3,
      5000,
    )
    const started = Date.now()
    await q.shutdown()
    expect(Date.now() - started).toBeLessThan(1000)
    await rejected
    expect(() => q.scheduleLayer(a.name, a.file, a.size)).toThrow(EngineStateError)
    expect(s.storedIndex()).toBeNull()
    expect(q.remoteConsistentLsn).toBe(0)
  })

  it('with a stale generation never deletes and never advances remote_consistent_lsn', async () => {
    let current = true
    const s = setup({ validate: async () => current })
    const q = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    await flushed(q)
    expect(q.remoteConsistentLsn).toBe(0x2000)
    current = false // another pageserver was attached with a newer generation
    q.scheduleLayer(b.name, b.file, b.size)
    q.scheduleIndex(listing(b), meta(0x3000))
    q.scheduleDelete([a.name])
    await flushed(q)
    expect(q.isStale).toBe(true)
    expect(q.remoteConsistentLsn).toBe(0x2000)
    expect(s.stored(a.name)).toBe(true)
    expect(s.storage.done.some((d) => d.startsWith('delete'))).toBe(false)
    expect(s.lines.map((l) => l.msg)).toContain('not deleting remote layers: the generation is stale')
  })

  it('retries validation that fails, and deletes only once the generation is confirmed', async () => {
    let failures = 2
    const s = setup({
      validate: async () => {
        if (failures-- > 0) throw new RemoteStorageError('control plane unreachable')
        return true
      },
    })
    const q = s.open()
    const a = s.layer(1)
    q.scheduleLayer(a.name, a.file, a.size)
    q.scheduleIndex(listing(a), meta(0x2000))
    await flushed(q)
    expect(q.remoteConsistentLsn).toBe(0x2000)
    expect(s.lines.filter((l) => l.msg === 'validation of the generation failed, will retry')).toHaveLength(2)
  })

  it('starts from the newest stored index at or below its generation and does not upload its layers again', async () => {
    const s = setup()
    const q1 = s.open()
    const a = s.layer(1)
    const b = s.layer(2)
    q1.scheduleLayer(a.name, a.file, a.size)
    q1.scheduleIndex(listing(a), meta(0x2000))
    await flushed(q1)
    await q1.shutdown()
    // A newer attachment's index, which a generation-1 queue must not load.
    await s.storage.put(
      indexKey(T, TL, 2),
      Buffer.from(
        readFileSync(path.join(s.storage.root, ...indexKey(T, TL, 1).split('/')))
          .toString()
          .replaceAll('0/2000', '0/9000'),
      ),
    )
    const q2 = s.open({ index: await loadRemoteIndex(s.storage, T, TL, 1) })
    await flushed(q2)
    expect(q2.remoteConsistentLsn).toBe(0x2000)
    const puts = s.storage.done.length
    q2.scheduleLayer(a.name, a.file, a.size)
    q2.scheduleLayer(b.name, b.file, b.size)
    q2.scheduleIndex(listing(a, b), meta(0x3000))
    await flushed(q2)
    expect(s.storage.done.slice(puts)).toEqual([`put ${b.name}`, 'put index'])
    expect(q2.remoteConsistentLsn).toBe(0x3000)
  })
})
