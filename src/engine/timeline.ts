/**
 * A timeline: one branch of a tenant's history. It takes batches of writes committed at an LSN, keeps
 * them in an open in-memory layer, freezes and flushes that layer to L0 delta files, and answers
 * get(key, lsn) by walking its layers from newest to oldest and then its ancestor below the branch point.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir, fsyncPath, removeTempFiles } from '../lib/durable-fs.js'
import type { LogFn, LogLevel } from '../lib/log.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { EngineStateError, GcCutoffError, LsnTimeoutError, ReconstructError } from './errors.js'
import { type IndexMetadata, PG_VERSION } from './index-part.js'
import { InMemoryLayer } from './inmemory-layer.js'
import { KEY_MAX, KEY_MIN, type KeyRange, keyFromStr, keyStr } from './key.js'
import { LayerFileWriter } from './layer-file.js'
import { runLayerJobInWorker } from './layer-jobs.js'
import { HistoricLayer, type LayerFetch, LayerMap } from './layer-map.js'
import { isL0Desc, type LayerDesc, parseLayerName } from './layer-name.js'
import {
  METADATA_FORMAT_VERSION,
  MetadataError,
  readMetadata,
  type TimelineMetadata,
  writeMetadata,
} from './metadata.js'
import type { PageCache } from './page-cache.js'
import { type ReadBounds, type ReadLsnRequest, resolveReadLsn } from './read-lsn.js'
import { garbageLayers, type LoadedIndex } from './remote-index.js'
import { Slicer } from './slicer.js'
import type { UploadQueue } from './upload-queue.js'
import { fromStored, isWillInit, type RedoRegistry, type Value, valueParts } from './value.js'

export const METADATA_FILE = 'metadata'
export const COMPACTION_MANIFEST = 'compaction-manifest'
/** Frozen layers at least this large are flushed by a worker thread; smaller ones are not worth one. */
const WORKER_FLUSH_BYTES = 8 * 1024 * 1024
const EPHEMERAL_PREFIX = 'ephemeral-'

/** The tenant config values the timeline itself acts on (durations in milliseconds). */
export interface TimelineConf {
  checkpoint_distance: number
  checkpoint_timeout: number
}

/** What a timeline needs from the tenant and repository around it. */
export interface TimelineEnv {
  tenantId: string
  cache: PageCache
  redo: RedoRegistry
  conf: () => TimelineConf
  log: LogFn
  /** Called after every committed batch, so the repository can enforce its memory budget. */
  afterWrite: (tl: Timeline) => void
  /** Called when frozen layers are waiting to be flushed. */
  requestFlush: (tl: Timeline) => void
  /** The newest LSN holding the data of `last` whatever the writer commits next (RepositoryContext). */
  quietUntil: (last: Lsn) => Lsn
  /** The timeline's upload queue, when the repository has remote storage, starting from `index`. */
  openUploadQueue?: (timelineId: string, index: LoadedIndex | null) => UploadQueue
  /** Fetches a layer of the timeline from its object of `generation` (with remote storage). */
  fetchLayer?: (timelineId: string, layer: HistoricLayer, generation: number) => Promise<void>
}

interface StoredVersion {
  lsn: Lsn
  value: Buffer
  willInit: boolean
  image: boolean
}

export interface Write {
  key: Buffer
  lsn: Lsn
  value: Value
}

export interface LayerInfo {
  kind: 'open' | 'frozen' | 'delta' | 'image'
  l0: boolean
  keyStart: Buffer
  keyEnd: Buffer
  lsnStart: Lsn
  lsnEnd: Lsn | null
  bytes: number
  file?: string
  /** Whether the layer's file is on local disk (false: only in remote storage, downloaded when read). */
  local: boolean
}

export class Timeline {
  readonly layers = new LayerMap()
  private open: InMemoryLayer | null = null
  /** Frozen layers waiting for the flush task, oldest first. */
  private frozen: InMemoryLayer[] = []
  private last: Lsn
  private prev: Lsn | null = null
  private waiters: { lsn: Lsn; resolve: () => void }[] = []
  private ephemeralSeq = 0
  private closed = false
  /** (unix ms, lsn) samples, so GC can turn pitr_interval into an LSN. */
  private lsnTimes: [number, Lsn][] = []
  private bgChain: Promise<void> = Promise.resolve()
  private flushChain: Promise<void> = Promise.resolve()
  /** Keeps remote storage a copy of the layers and metadata; null without remote storage. */
  private queue: UploadQueue | null

  private constructor(
    private readonly env: TimelineEnv,
    readonly timelineId: string,
    readonly dir: string,
    private md: TimelineMetadata,
    readonly ancestor: Timeline | null,
    index: LoadedIndex | null = null,
  ) {
    this.last = md.diskConsistentLsn
    this.queue = env.openUploadQueue?.(timelineId, index) ?? null
  }

  get uploads(): UploadQueue | null {
    return this.queue
  }

  /**
   * Replaces the upload queue (the old one is shut down already: a new generation), starting from the
   * new generation's index: every local layer it lacks is uploaded again, then an index of all.
   */
  restartUploads(index: LoadedIndex | null): void {
    this.queue = this.env.openUploadQueue?.(this.timelineId, index) ?? null
    for (const l of this.layers.layers)
      if (l.isLocal) this.queue?.scheduleLayer(path.basename(l.path), l.path, l.fileSize)
    this.scheduleIndex()
  }

  /** A new timeline: a root one at `initLsn`, or a branch of `ancestor` at `ancestorLsn`. */
  static create(
    env: TimelineEnv,
    timelineId: string,
    dir: string,
    init: { initLsn: Lsn; ancestor?: Timeline; latestGcCutoffLsn?: Lsn; prevRecordLsn?: Lsn | null },
  ): Timeline {
    const md: TimelineMetadata = {
      formatVersion: 1,
      diskConsistentLsn: init.initLsn,
      ancestorTimelineId: init.ancestor?.timelineId ?? null,
      ancestorLsn: init.ancestor ? init.initLsn : 0,
      latestGcCutoffLsn: init.latestGcCutoffLsn ?? 0,
      initLsn: init.initLsn,
      createdAt: new Date().toISOString(),
    }
    writeMetadata(path.join(dir, METADATA_FILE), md)
    const tl = new Timeline(env, timelineId, dir, md, init.ancestor ?? null)
    tl.prev = init.prevRecordLsn ?? null
    tl.scheduleIndex()
    return tl
  }

  /**
   * Opens a timeline from its directory: removes leftovers of interrupted writes and layers newer than
   * disk_consistent_lsn (their WAL is streamed again), settles an interrupted compaction, and opens
   * every layer with its header checked. With a remote index (`index`), that index is the truth instead
   * (reconcileWithIndex).
   */
  static load(
    env: TimelineEnv,
    timelineId: string,
    dir: string,
    ancestor: Timeline | null,
    index: LoadedIndex | null = null,
  ): Timeline {
    if (index) return Timeline.reconcileWithIndex(env, timelineId, dir, ancestor, index)
    removeTempFiles(dir)
    const md = readMetadata(path.join(dir, METADATA_FILE))
    const tl = new Timeline(env, timelineId, dir, md, ancestor)
    const found: { desc: LayerDesc; name: string }[] = []
    let removed = false
    for (const name of readdirSync(dir)) {
      if (name.startsWith(EPHEMERAL_PREFIX)) {
        rmSync(path.join(dir, name), { force: true })
        removed = true
        continue
      }
      const desc = parseLayerName(name)
      if (!desc) continue
      const newest = desc.kind === 'image' ? desc.lsnStart : desc.lsnEnd - 1
      if (newest > md.diskConsistentLsn) {
        env.log('info', 'removing layer newer than disk_consistent_lsn', { timelineId, layer: name })
        rmSync(path.join(dir, name), { force: true })
        removed = true
        continue
      }
      found.push({ desc, name })
    }
    for (const name of settleInterruptedCompaction(dir, found)) {
      env.log('info', 'removing layer left by an interrupted compaction', { timelineId, layer: name })
      rmSync(path.join(dir, name), { force: true })
      removed = true
    }
    if (removed) fsyncDir(dir)
    const layers = found.map((f) => tl.localLayer(f.desc, path.join(dir, f.name)))
    tl.layers.replace([], layers)
    // The queue skips what its remote index already holds with the same size.
    for (const l of layers) tl.uploads?.scheduleLayer(path.basename(l.path), l.path, l.fileSize)
    tl.scheduleIndex()
    return tl
  }

  /**
   * Opens a timeline whose remote index is the truth (a start with remote storage, or an attach, when
   * the directory may be empty): the metadata is the index's (the local file is rewritten when it
   * differs; WAL above the index's disk_consistent_lsn is streamed again), local layer files the index
   * does not list are removed, a listed layer whose file is missing or of another size is remote-only,
   * and the objects the index does not list (of its generation or older) are queued for deletion.
   */
  private static reconcileWithIndex(
    env: TimelineEnv,
    timelineId: string,
    dir: string,
    ancestor: Timeline | null,
    loaded: LoadedIndex,
  ): Timeline {
    mkdirSync(dir, { recursive: true })
    removeTempFiles(dir)
    const mdFile = path.join(dir, METADATA_FILE)
    let local: TimelineMetadata | null = null
    try {
      if (existsSync(mdFile)) local = readMetadata(mdFile)
    } catch (err) {
      if (!(err instanceof MetadataError)) throw err
      env.log('warn', 'local metadata unreadable: the remote index replaces it', {
        timelineId,
        error: err.message,
      })
    }
    const md = metadataFromIndex(loaded.index.metadata, local?.createdAt)
    if (!local || !sameMetadata(local, md)) {
      if (local && local.diskConsistentLsn !== md.diskConsistentLsn) {
        env.log('info', 'local metadata differs from the remote index: the index is the truth', {
          timelineId,
          local_disk_consistent_lsn: formatLsn(local.diskConsistentLsn),
          remote_disk_consistent_lsn: formatLsn(md.diskConsistentLsn),
        })
      }
      writeMetadata(mdFile, md)
    }
    const tl = new Timeline(env, timelineId, dir, md, ancestor, loaded)
    const listed = loaded.index.layers
    const kept = new Set<string>()
    let removed = false
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name)
      if (name.startsWith(EPHEMERAL_PREFIX) || name === COMPACTION_MANIFEST) {
        rmSync(file, { force: true })
        removed = true
        continue
      }
      if (!parseLayerName(name)) continue
      const want = listed[name]
      if (want && statSync(file).size === want.fileSize) {
        kept.add(name)
        continue
      }
      env.log(
        'info',
        want
          ? 'removing local layer of another size than the remote index lists'
          : 'removing local layer the remote index does not list',
        {
          timelineId,
          layer: name,
          key: loaded.key,
        },
      )
      rmSync(file, { force: true })
      removed = true
    }
    if (removed) fsyncDir(dir)
    const layers = Object.entries(listed).map(([name, l]) => {
      const desc = parseLayerName(name)!
      const file = path.join(dir, name)
      return kept.has(name) ? tl.localLayer(desc, file) : tl.remoteLayer(desc, file, l.fileSize, l.generation)
    })
    tl.layers.replace([], layers)
    tl.prev = loaded.index.metadata.prevRecordLsn
    env.log('info', 'remote index loaded', {
      timelineId,
      key: loaded.key,
      layers: layers.length,
      local: kept.size,
      disk_consistent_lsn: formatLsn(md.diskConsistentLsn),
    })
    tl.scheduleIndex()
    const garbage = garbageLayers(loaded)
    if (garbage.length > 0) {
      env.log('info', 'remote layers the index does not list: queued for deletion', {
        timelineId,
        layers: garbage.length,
      })
      tl.uploads?.scheduleDeleteObjects(garbage)
    }
    return tl
  }

  private localLayer(desc: LayerDesc, file: string): HistoricLayer {
    const l = new HistoricLayer(desc, file, statSync(file).size, this.env.cache)
    l.reader()
    return l
  }

  private remoteLayer(desc: LayerDesc, file: string, size: number, generation: number): HistoricLayer {
    const fetchLayer = this.env.fetchLayer
    const fetch: LayerFetch | null = fetchLayer ? (l) => fetchLayer(this.timelineId, l, generation) : null
    return new HistoricLayer(desc, file, size, this.env.cache, fetch, false)
  }

  get tenantId(): string {
    return this.env.tenantId
  }

  get metadata(): Readonly<TimelineMetadata> {
    return this.md
  }

  get lastRecordLsn(): Lsn {
    return this.last
  }

  /** Start of the record that ends at last_record_lsn, when known (not persisted: null after a restart). */
  get prevRecordLsn(): Lsn | null {
    return this.prev
  }

  get diskConsistentLsn(): Lsn {
    return this.md.diskConsistentLsn
  }

  /**
   * How far the timeline's data is in remote storage: the disk_consistent_lsn of the newest uploaded
   * index whose generation the control plane confirmed. Without remote storage, the local disk is as
   * far as durability goes, and it is disk_consistent_lsn.
   */
  get remoteConsistentLsn(): Lsn {
    return this.uploads ? this.uploads.remoteConsistentLsn : this.md.diskConsistentLsn
  }

  get latestGcCutoffLsn(): Lsn {
    return this.md.latestGcCutoffLsn
  }

  get ancestorLsn(): Lsn {
    return this.md.ancestorLsn
  }

  /** Bytes held by the open layer: what the memory budget weighs. */
  get openLayerBytes(): number {
    return this.open?.size ?? 0
  }

  get openLayer(): InMemoryLayer | null {
    return this.open
  }

  get frozenLayerCount(): number {
    return this.frozen.length
  }

  /**
   * Stores a batch of writes and moves last_record_lsn to `commitLsn` in one step: readers see all of
   * the batch or none of it. Every write's LSN lies in (last_record_lsn, commitLsn]. WAL ingest also
   * names where the last record started (prev_record_lsn, as Postgres' prev-link of the next record).
   */
  ingest(writes: readonly Write[], commitLsn: Lsn, prevRecordLsn: Lsn | null = null): void {
    this.assertOpen()
    if (!Number.isSafeInteger(commitLsn) || commitLsn <= this.last) {
      throw new EngineStateError(
        `commit LSN ${formatLsn(commitLsn)} is not after last_record_lsn ${formatLsn(this.last)} of timeline ${this.timelineId}`,
      )
    }
    // Within a key, versions must ascend: callers may batch in any order, but WAL ingest already hands
    // writes in LSN order, and then nothing needs sorting.
    let ordered = true
    for (let i = 0; i < writes.length; i++) {
      const lsn = writes[i].lsn
      if (lsn <= this.last || lsn > commitLsn) {
        throw new EngineStateError(
          `write at ${formatLsn(lsn)} is outside (${formatLsn(this.last)}, ${formatLsn(commitLsn)}] of timeline ${this.timelineId}`,
        )
      }
      if (i > 0 && writes[i - 1].lsn > lsn) ordered = false
    }
    if (writes.length > 0) {
      const layer = this.openLayerForWrite()
      const sorted = ordered ? writes : [...writes].sort((a, b) => a.lsn - b.lsn)
      for (const w of sorted) layer.put(w.key, w.lsn, valueParts(w.value), isWillInit(w.value))
    }
    this.last = commitLsn
    this.prev = prevRecordLsn
    this.sampleLsnTime(commitLsn)
    this.wakeWaiters()
    this.maybeFreeze()
    this.env.afterWrite(this)
  }

  /** What the LSN of a read is decided from (see resolveReadLsn). */
  get readBounds(): ReadBounds {
    return {
      lastRecordLsn: this.last,
      quietUntil: Math.max(this.last, this.env.quietUntil(this.last)),
      startLsn: this.md.initLsn,
      gcCutoffLsn: this.md.latestGcCutoffLsn,
    }
  }

  /**
   * The LSN a read as of `req.lsn` (none: the latest) runs at, as resolveReadLsn decides it. With
   * `timeoutMs`, an LSN not yet received is waited for that long; without, it is refused.
   */
  async readLsn(req: Omit<ReadLsnRequest, 'wait' | 'where'> & { timeoutMs?: number }): Promise<Lsn> {
    const { timeoutMs, ...rest } = req
    const where = `timeline ${this.timelineId}`
    for (;;) {
      const r = resolveReadLsn(this.readBounds, { ...rest, where, wait: timeoutMs !== undefined })
      if (r.waitFor === undefined) return r.lsn
      await this.waitLsn(r.waitFor, timeoutMs!)
    }
  }

  /** Resolves once last_record_lsn ≥ lsn; rejects after `timeoutMs`. */
  waitLsn(lsn: Lsn, timeoutMs: number): Promise<void> {
    if (this.last >= lsn) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = {
        lsn,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new LsnTimeoutError(this.timelineId, lsn, this.last, timeoutMs))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  /** The value of `key` as of `lsn` (a page, reconstructed through redo), or null if it has none. */
  get(key: Buffer, lsn: Lsn): Buffer | null {
    this.assertReadable(lsn)
    const stack: StoredVersion[] = []
    let complete = false
    const collect = (l: Lsn, value: Buffer, willInit: boolean, image: boolean) => {
      stack.push({ lsn: l, value, willInit, image })
      complete = willInit
      return willInit
    }
    let tl: Timeline = this
    let cont = lsn + 1
    for (;;) {
      for (const m of tl.inMemoryNewestFirst()) {
        if (m.lsnStart >= cont) continue
        m.visit(key, m.lsnStart, cont, collect)
        cont = m.lsnStart
        if (complete) break
      }
      while (!complete) {
        const hit = tl.layers.search(key, cont)
        if (!hit) break
        const reader = hit.layer.reader()
        if (hit.layer.isImage) {
          // An image layer holds every key of its range that exists at its LSN: absence is an answer.
          reader.visit(key, hit.floor, hit.floor + 1, collect)
          complete = true
          break
        }
        reader.visit(key, hit.floor, Math.min(cont, hit.layer.desc.lsnEnd), collect)
        cont = hit.floor
      }
      if (complete || !tl.ancestor) break
      cont = Math.min(cont, tl.md.ancestorLsn + 1)
      tl = tl.ancestor
    }
    return this.reconstruct(key, lsn, stack)
  }

  private reconstruct(key: Buffer, lsn: Lsn, stack: StoredVersion[]): Buffer | null {
    if (stack.length === 0) return null
    let i = stack.length - 1
    let page: Buffer | null = null
    if (!stack[i].willInit) {
      throw new ReconstructError(
        `cannot reconstruct key ${key.toString('hex').toUpperCase()} at ${formatLsn(lsn)} on timeline ${this.timelineId}: ` +
          `the oldest version found (${formatLsn(stack[i].lsn)}) is a record that needs an earlier page`,
      )
    }
    for (; i >= 0; i--) {
      const v = fromStored(stack[i].value, stack[i].willInit, stack[i].image)
      if (v.kind === 'image') page = v.page
      else page = this.env.redo.apply(key, v.willInit ? null : page, v.recordKind, v.data, stack[i].lsn)
    }
    return page
  }

  /** Keys that have a value at `lsn`, in key order, optionally within a range. */
  async listKeys(lsn: Lsn, slice: Slicer, range?: KeyRange): Promise<Buffer[]> {
    // A layer that compaction or GC removes while the listing is paused ends the walk; the next one
    // sees the layers that replaced it.
    for (let attempt = 1; ; attempt++) {
      const walked: HistoricLayer[] = []
      try {
        return await this.walkKeys(lsn, slice, walked, range)
      } catch (err) {
        if (attempt >= 3 || !walked.some((l) => l.isRemoved)) throw err
      }
    }
  }

  private async walkKeys(
    lsn: Lsn,
    slice: Slicer,
    walked: HistoricLayer[],
    range?: KeyRange,
  ): Promise<Buffer[]> {
    this.assertReadable(lsn)
    // Each source lists its keys in order; merging the lists is cheaper than a set and a sort, and
    // can pause between any two keys.
    const lists: string[][] = []
    let tl: Timeline = this
    let at = lsn
    for (;;) {
      for (const m of tl.inMemoryNewestFirst()) {
        if (m.lsnStart > at) continue
        lists.push(m.keyStrs(at, range?.start, range?.end))
        await slice.yield()
      }
      for (const l of [...tl.layers.layers]) {
        if (l.desc.lsnStart > at) continue
        if (range && (keyStr(range.end) <= l.keyStartStr || keyStr(range.start) >= l.keyEndStr)) continue
        walked.push(l)
        const reader = l.reader()
        const keys: string[] = []
        // From the index alone: a layer wholly at or below `at` contributes all its keys.
        if (l.isImage || l.desc.lsnEnd - 1 <= at) {
          for (const k of reader.keys(range)) {
            keys.push(keyStr(k))
            await slice.yield()
          }
        } else {
          for (const v of reader.versions(range)) {
            if (v.lsn <= at && keys[keys.length - 1] !== keyStr(v.key)) keys.push(keyStr(v.key))
            await slice.yield()
          }
        }
        lists.push(keys)
      }
      if (!tl.ancestor) break
      at = Math.min(at, tl.md.ancestorLsn)
      tl = tl.ancestor
    }
    return mergeKeyLists(lists, slice)
  }

  /** Freezes the open layer (if it holds anything) at last_record_lsn and asks for a flush. */
  freezeOpenLayer(): boolean {
    if (!this.open || this.open.size === 0) return false
    this.open.freeze(this.last + 1)
    this.frozen.push(this.open)
    this.open = null
    this.env.requestFlush(this)
    return true
  }

  /** Freezes the open layer if it has been open longer than checkpoint_timeout. */
  freezeIfOld(now = Date.now()): boolean {
    if (!this.open || this.open.size === 0) return false
    if (now - this.open.openedAt < this.env.conf().checkpoint_timeout) return false
    return this.freezeOpenLayer()
  }

  /**
   * Writes every frozen layer out as an L0 delta, oldest first, and moves disk_consistent_lsn past it.
   * The file is durable before the metadata says so, and the metadata before the in-memory copy goes.
   */
  flushFrozen(signal?: AbortSignal): Promise<void> {
    // One flush at a time: two would write the same frozen layer twice.
    const run = this.flushChain.then(() => this.flushQueue(signal))
    this.flushChain = run.catch(() => undefined)
    return run
  }

  private async flushQueue(signal?: AbortSignal): Promise<void> {
    while (this.frozen.length > 0 && !signal?.aborted) {
      const started = performance.now()
      const m = this.frozen[0]
      const end = m.lsnEnd!
      let added: string[] = []
      if (m.size >= WORKER_FLUSH_BYTES) {
        // A large layer is written by a worker thread, so ingest and reads go on meanwhile.
        const path = await runLayerJobInWorker<string>(
          {
            kind: 'flush',
            ephemeralPath: m.filePath,
            dir: this.dir,
            tenantId: this.env.tenantId,
            timelineId: this.timelineId,
            lsnStart: m.lsnStart,
            lsnEnd: end,
            ...m.snapshotIndex(),
          },
          `flush of ${m.size} bytes of timeline ${this.timelineId}`,
        )
        added = [path]
      } else if (m.keyCount > 0) {
        const w = new LayerFileWriter({
          dir: this.dir,
          kind: 'delta',
          tenantId: this.env.tenantId,
          timelineId: this.timelineId,
          keyStart: KEY_MIN,
          keyEnd: KEY_MAX,
          lsnStart: m.lsnStart,
          lsnEnd: end,
        })
        try {
          // Let reads in between, every half millisecond: a flush writes checkpoint_distance bytes.
          const slice = new Slicer(0.5)
          for (const e of m.entries()) {
            w.add(e.key, e.lsn, e.value, e.willInit, e.image)
            await slice.yield()
          }
          added = [(await w.finishOffThread()).path]
        } catch (err) {
          w.abort()
          throw err
        }
      }
      const [layer] = await this.replaceLayers([], added, { diskConsistentLsn: end - 1 })
      this.frozen.shift()
      m.drop()
      // A layer without keys writes no file: only disk_consistent_lsn moved, which is not worth a line.
      this.log(layer ? 'info' : 'debug', 'flush done', {
        layer: layer ? path.basename(layer.path) : undefined,
        lsn: lsnRange(m.lsnStart, end),
        bytes: layer?.fileSize ?? 0,
        ms: elapsedMs(started),
      })
    }
  }

  /** Freezes whatever is open and flushes everything: all data up to last_record_lsn becomes durable. */
  async checkpoint(): Promise<void> {
    this.freezeOpenLayer()
    await this.flushFrozen()
    // Records that change no page (running-xacts snapshots, say) move last_record_lsn without opening a
    // layer; with nothing in memory, everything up to it is on disk already, and callers that start a
    // compute at disk_consistent_lsn need it to say so.
    if (this.frozen.length === 0 && !this.open?.size && this.md.diskConsistentLsn < this.last) {
      this.md = { ...this.md, diskConsistentLsn: this.last }
      this.persistMetadata()
    }
  }

  /**
   * Swaps layers in one step — new files (already durable) in, old ones out and deleted — so reads see
   * either the old set or the new one; with `diskConsistentLsn` (a flush), the metadata moves with them.
   * Remote storage follows: the new files are uploaded, then an index of the new set, and the old files'
   * objects are deleted after it.
   */
  async replaceLayers(
    remove: readonly HistoricLayer[],
    addPaths: readonly string[],
    opts: { diskConsistentLsn?: Lsn } = {},
  ): Promise<HistoricLayer[]> {
    const added = addPaths.map((file) => {
      const desc = parseLayerName(path.basename(file))
      if (!desc) throw new EngineStateError(`${file} is not named as a layer file`)
      return this.localLayer(desc, file)
    })
    this.layers.replace(remove, added)
    for (const l of added) this.uploads?.scheduleLayer(path.basename(l.path), l.path, l.fileSize)
    if (opts.diskConsistentLsn !== undefined) {
      this.md = { ...this.md, diskConsistentLsn: Math.max(this.md.diskConsistentLsn, opts.diskConsistentLsn) }
      this.persistMetadata()
    } else if (remove.length > 0 || added.length > 0) {
      this.scheduleIndex()
    }
    this.uploads?.scheduleDelete(remove.map((l) => path.basename(l.path)))
    for (const l of remove) l.markRemoved()
    // Off the event loop: deleting a large file can take long on a filesystem mounted with discard.
    await Promise.all(remove.map((l) => rm(l.path, { force: true })))
    if (remove.length > 0) await fsyncPath(this.dir)
    return added
  }

  /**
   * Runs background work that rewrites layers (compaction, image creation, GC) one at a time per
   * timeline, so that none removes a layer another is still reading.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.bgChain.then(fn)
    this.bgChain = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  setGcCutoff(cutoff: Lsn): void {
    if (cutoff <= this.md.latestGcCutoffLsn) return
    this.md = { ...this.md, latestGcCutoffLsn: cutoff }
    this.persistMetadata()
  }

  /** The LSN that was current at `unixMs`, as far as this timeline's samples tell; null if older. */
  lsnAtTime(unixMs: number): Lsn | null {
    let best: Lsn | null = null
    for (const [t, lsn] of this.lsnTimes) {
      if (t > unixMs) break
      best = lsn
    }
    return best
  }

  layerInfo(): LayerInfo[] {
    const mem = this.inMemoryNewestFirst().map(
      (m): LayerInfo => ({
        kind: m.frozen ? 'frozen' : 'open',
        l0: false,
        keyStart: KEY_MIN,
        keyEnd: KEY_MAX,
        lsnStart: m.lsnStart,
        lsnEnd: m.lsnEnd,
        bytes: m.size,
        local: true,
      }),
    )
    const disk = this.layers.layers.map(
      (l): LayerInfo => ({
        kind: l.desc.kind,
        l0: l.isL0,
        keyStart: l.desc.keyStart,
        keyEnd: l.desc.keyEnd,
        lsnStart: l.desc.lsnStart,
        lsnEnd: l.desc.lsnEnd,
        bytes: l.fileSize,
        file: path.basename(l.path),
        local: l.isLocal,
      }),
    )
    return [...mem, ...disk]
  }

  /**
   * Downloads every remote-only layer a read of this timeline may touch: its own, and its ancestors' up
   * to the branch point. For reads that cannot restart halfway (a basebackup streams as it reads).
   */
  async downloadLayers(): Promise<number> {
    const wanted: HistoricLayer[] = []
    let below = Number.POSITIVE_INFINITY
    for (let tl: Timeline | null = this; tl; tl = tl.ancestor) {
      for (const l of tl.layers.layers) if (!l.isLocal && l.desc.lsnStart <= below) wanted.push(l)
      below = Math.min(below, tl.md.ancestorLsn)
    }
    await Promise.all(wanted.map((l) => l.download()))
    return wanted.length
  }

  /** Drops in-memory data (it is re-ingested from WAL after a restart) and closes files. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const m of [...this.frozen, ...(this.open ? [this.open] : [])]) m.drop()
    this.frozen = []
    this.open = null
    for (const l of this.layers.layers) l.close()
  }

  /** Logs a line about this timeline: its tenant and timeline ids come first. */
  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    this.env.log(level, msg, { tenantId: this.tenantId, timelineId: this.timelineId, ...fields })
  }

  /** Writes the metadata file, and queues an index with it when there is remote storage. */
  persistMetadata(): void {
    writeMetadata(path.join(this.dir, METADATA_FILE), this.md)
    this.scheduleIndex()
  }

  /**
   * Queues an index of the layers and metadata as they are now. A root timeline before its first layer
   * (initdb's import is being flushed) has nothing to say yet: such an index is not valid.
   */
  private scheduleIndex(): void {
    if (!this.uploads || this.closed) return
    if (this.md.ancestorTimelineId === null && this.layers.layers.length === 0) return
    const layers = new Map(this.layers.layers.map((l) => [path.basename(l.path), l.fileSize]))
    const md = this.md
    this.uploads.scheduleIndex(layers, {
      diskConsistentLsn: md.diskConsistentLsn,
      // Known only while everything received is on disk: prev_record_lsn belongs to last_record_lsn.
      prevRecordLsn: this.last === md.diskConsistentLsn ? this.prev : null,
      ancestorTimeline: md.ancestorTimelineId,
      ancestorLsn: md.ancestorLsn,
      latestGcCutoffLsn: md.latestGcCutoffLsn,
      initdbLsn: md.initLsn,
      pgVersion: PG_VERSION,
    })
  }

  private inMemoryNewestFirst(): InMemoryLayer[] {
    const out: InMemoryLayer[] = []
    if (this.open) out.push(this.open)
    for (let i = this.frozen.length - 1; i >= 0; i--) out.push(this.frozen[i])
    return out
  }

  private openLayerForWrite(): InMemoryLayer {
    if (!this.open) {
      const file = path.join(this.dir, `${EPHEMERAL_PREFIX}${process.pid}-${++this.ephemeralSeq}`)
      this.open = new InMemoryLayer(this.last + 1, file, this.env.cache)
    }
    return this.open
  }

  private maybeFreeze(): void {
    if (!this.open) return
    const dist = this.env.conf().checkpoint_distance
    if (this.open.size >= dist || this.last + 1 - this.open.lsnStart >= dist) this.freezeOpenLayer()
  }

  private sampleLsnTime(lsn: Lsn): void {
    const now = Date.now()
    const lastSample = this.lsnTimes[this.lsnTimes.length - 1]
    if (lastSample && now - lastSample[0] < 1000) return
    this.lsnTimes.push([now, lsn])
    if (this.lsnTimes.length > 4096) this.lsnTimes = this.lsnTimes.filter((_, i) => i % 2 === 0)
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return
    const ready = this.waiters.filter((w) => w.lsn <= this.last)
    this.waiters = this.waiters.filter((w) => w.lsn > this.last)
    for (const w of ready) w.resolve()
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineStateError(`timeline ${this.timelineId} is shut down`)
  }

  private assertReadable(lsn: Lsn): void {
    this.assertOpen()
    if (lsn < this.md.latestGcCutoffLsn)
      throw new GcCutoffError(`timeline ${this.timelineId}`, lsn, this.md.latestGcCutoffLsn)
    if (lsn > this.last) {
      throw new EngineStateError(
        `read at ${formatLsn(lsn)} is beyond last_record_lsn ${formatLsn(this.last)} of timeline ${this.timelineId}; wait for it with waitLsn`,
      )
    }
  }
}

/** An LSN range as log lines show it: `0/1000000-0/2000000`, the end exclusive as in layer names. */
export const lsnRange = (start: Lsn, end: Lsn): string => `${formatLsn(start)}-${formatLsn(end)}`

/** Whole milliseconds since a `performance.now()` reading. */
export const elapsedMs = (since: number): number => Math.round(performance.now() - since)

/**
 * Settles a compaction that a crash interrupted. With its manifest on disk the outputs are complete, so
 * the inputs go; without one, L1 deltas found beside L0s of the same LSN range are an unfinished merge's
 * outputs, so they go. Returns the file names to remove.
 */
function settleInterruptedCompaction(dir: string, found: { desc: LayerDesc; name: string }[]): string[] {
  const remove: string[] = []
  const manifestPath = path.join(dir, COMPACTION_MANIFEST)
  if (existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as { inputs: string[]; outputs: string[] }
    const names = new Set(found.map((f) => f.name))
    const complete = m.outputs.every((o) => names.has(o))
    remove.push(...(complete ? m.inputs : m.outputs).filter((n) => names.has(n)))
  }
  const l0 = found.filter((f) => isL0Desc(f.desc) && !remove.includes(f.name))
  for (const f of found) {
    if (f.desc.kind !== 'delta' || isL0Desc(f.desc) || remove.includes(f.name)) continue
    const overlapsL0 = l0.some((z) => z.desc.lsnStart < f.desc.lsnEnd && f.desc.lsnStart < z.desc.lsnEnd)
    if (overlapsL0) remove.push(f.name)
  }
  const gone = new Set(remove)
  for (let i = found.length - 1; i >= 0; i--) if (gone.has(found[i].name)) found.splice(i, 1)
  rmSync(manifestPath, { force: true })
  return remove
}

/** The timeline metadata an index holds (the creation time is not in it: the local one's, or now). */
function metadataFromIndex(m: IndexMetadata, createdAt = new Date().toISOString()): TimelineMetadata {
  return {
    formatVersion: METADATA_FORMAT_VERSION,
    diskConsistentLsn: m.diskConsistentLsn,
    ancestorTimelineId: m.ancestorTimeline,
    ancestorLsn: m.ancestorLsn,
    latestGcCutoffLsn: m.latestGcCutoffLsn,
    initLsn: m.initdbLsn,
    createdAt,
  }
}

const sameMetadata = (a: TimelineMetadata, b: TimelineMetadata): boolean =>
  (Object.keys(b) as (keyof TimelineMetadata)[]).every((k) => a[k] === b[k])

/** Sorted key lists merged into one without duplicates, pairwise, pausing between keys when due. */
async function mergeKeyLists(lists: string[][], slice: Slicer): Promise<Buffer[]> {
  let level = lists
  while (level.length > 1) {
    const next: string[][] = []
    for (let i = 0; i + 1 < level.length; i += 2) next.push(await mergeTwo(level[i], level[i + 1], slice))
    if (level.length % 2 === 1) next.push(level[level.length - 1])
    level = next
  }
  const out: Buffer[] = []
  for (const k of level[0] ?? []) {
    out.push(keyFromStr(k))
    await slice.yield()
  }
  return out
}

async function mergeTwo(a: readonly string[], b: readonly string[], slice: Slicer): Promise<string[]> {
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const k = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++]
    if (out.length === 0 || out[out.length - 1] !== k) out.push(k)
    await slice.yield()
  }
  return out
}
