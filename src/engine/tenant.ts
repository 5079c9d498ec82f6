/**
 * A tenant: its config (persisted overrides over the repository's defaults), its timelines and
 * branches, and the background loops that keep their layers in shape — flush, compaction with image
 * creation, GC, and freezing of idle open layers.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fsyncDir } from '../lib/durable-fs.js'
import { generateId, parseId } from '../lib/ids.js'
import type { LogFn } from '../lib/log.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { type CompactionResult, compactL0 } from './compaction.js'
import { EngineStateError, NotFoundError } from './errors.js'
import { type GcResult, gcCutoff, gcTimeline } from './gc.js'
import { createImageLayers, type ImageResult } from './image-layers.js'
import { downloadLayerFile, withLocalLayers } from './layer-download.js'
import type { HistoricLayer } from './layer-map.js'
import { type AttachMode, LOCATION_FILE, type Location, readLocation, writeLocation } from './location.js'
import type { MemoryBudget } from './memory-budget.js'
import { readMetadata } from './metadata.js'
import type { PageCache } from './page-cache.js'
import { resolveReadLsn } from './read-lsn.js'
import { type LoadedIndex, listRemoteTimelines, loadRemoteIndex } from './remote-index.js'
import { layerKey } from './remote-layout.js'
import type { RemoteStorage } from './remote-storage.js'
import type { TaskManager } from './task-manager.js'
import {
  applyConfigPatch,
  effectiveConfig,
  loadTenantConfig,
  saveTenantConfig,
  type TenantConfig,
  type TenantConfigOverrides,
} from './tenant-config.js'
import { lsnRange, METADATA_FILE, Timeline, type TimelineEnv } from './timeline.js'
import { UploadQueue } from './upload-queue.js'
import type { RedoRegistry } from './value.js'

export const TENANT_CONFIG_FILE = 'config'
export const TIMELINES_DIR = 'timelines'
/** A timeline or tenant directory being deleted: removed at load if a crash interrupted the deletion. */
export const DELETED_SUFFIX = '.___deleted'
/** How long a graceful shutdown waits for uploads before it leaves the rest to the next start. */
const UPLOAD_DRAIN_MS = 10_000

/** Remote storage as the repository's tenants use it. */
export interface RemoteContext {
  storage: RemoteStorage
  /** Whether the tenant's generation is still current (the control plane answers); default: always. */
  validate?: (tenantId: string, generation: number) => Promise<boolean>
  /** Retry timing of the upload queues (tests shorten it). */
  backoff?: { baseMs: number; maxMs: number }
}

/** What every tenant of a repository shares. */
export interface RepositoryContext {
  cache: PageCache
  redo: RedoRegistry
  memory: MemoryBudget
  tasks: TaskManager
  log: LogFn
  defaults: TenantConfigOverrides
  /** Whether tenants run their background loops (tests drive compaction and GC by hand). */
  background: boolean
  /**
   * The keys that still exist on a timeline at an LSN, for image layers (the Postgres mapping supplies
   * it); without it, every key found in the layers does.
   */
  imageKeyFilter?: (tl: Timeline, lsn: Lsn) => (key: Buffer) => boolean
  /**
   * The newest LSN that holds the data of a timeline at `last` whatever its writer commits next (the
   * Postgres mapping supplies WAL's rule); without it, `last` itself.
   */
  quietUntil?: (last: Lsn) => Lsn
  /** Where every layer and index is copied to; without it, the local disk is the only copy. */
  remote?: RemoteContext
}

export class Tenant {
  private readonly timelineMap = new Map<string, Timeline>()
  private readonly flushing = new Set<Timeline>()
  private compactionKick: (() => void) | null = null

  private constructor(
    readonly tenantId: string,
    readonly dir: string,
    private overrides: TenantConfigOverrides,
    private readonly ctx: RepositoryContext,
    private loc: Location,
  ) {}

  static create(
    ctx: RepositoryContext,
    dir: string,
    tenantId: string,
    overrides: TenantConfigOverrides,
    location: Location,
  ): Tenant {
    // Validated before anything exists on disk: a bad value must not leave a half-made tenant.
    const valid = applyConfigPatch({}, overrides)
    mkdirSync(path.join(dir, TIMELINES_DIR), { recursive: true })
    writeLocation(path.join(dir, LOCATION_FILE), location)
    const t = new Tenant(tenantId, dir, {}, ctx, location)
    t.updateConfig(valid)
    t.startBackground()
    return t
  }

  /**
   * Loads the tenant's config and timelines, ancestors before their branches. With remote storage, each
   * timeline's newest remote index at or below the generation is the truth its local files are
   * reconciled against (Timeline.load). `location` (the control plane's) replaces the persisted one.
   */
  static async load(
    ctx: RepositoryContext,
    dir: string,
    tenantId: string,
    location?: Location,
  ): Promise<Tenant> {
    const locFile = path.join(dir, LOCATION_FILE)
    const persisted = readLocation(locFile)
    const loc = location ?? persisted
    if (!existsSync(locFile) || loc.generation !== persisted.generation || loc.mode !== persisted.mode)
      writeLocation(locFile, loc)
    const t = new Tenant(tenantId, dir, loadTenantConfig(path.join(dir, TENANT_CONFIG_FILE)), ctx, loc)
    const tlDir = path.join(dir, TIMELINES_DIR)
    mkdirSync(tlDir, { recursive: true })
    const ids: string[] = []
    for (const id of readdirSync(tlDir)) {
      const d = path.join(tlDir, id)
      if (id.endsWith(DELETED_SUFFIX)) {
        rmSync(d, { recursive: true, force: true })
        continue
      }
      if (statSync(d).isDirectory()) ids.push(id)
    }
    const indexes = await Promise.all(ids.map((id) => t.loadIndex(id)))
    t.register(new Map(ids.map((id, i) => [id, indexes[i]])))
    t.startBackground()
    t.warmIfSecondary()
    return t
  }

  /**
   * A tenant from remote storage alone: every timeline's newest index at or below the generation, the
   * timelines registered together, ancestors before children, every layer remote-only (downloaded when
   * read). No timeline in storage is a NotFoundError and nothing is created.
   */
  static async attach(
    ctx: RepositoryContext,
    dir: string,
    tenantId: string,
    location: Location,
    overrides: TenantConfigOverrides,
  ): Promise<Tenant> {
    const remote = ctx.remote
    if (!remote)
      throw new EngineStateError(`cannot attach tenant ${tenantId}: the repository has no remote storage`)
    const valid = applyConfigPatch({}, overrides)
    const t = new Tenant(tenantId, dir, {}, ctx, location)
    const ids = await listRemoteTimelines(remote.storage, tenantId, { backoff: remote.backoff })
    const loaded = await Promise.all(ids.map((id) => t.loadIndex(id)))
    const indexes = new Map<string, LoadedIndex>()
    for (const [i, id] of ids.entries()) {
      const ix = loaded[i]
      if (ix) indexes.set(id, ix)
      else
        ctx.log('warn', 'timeline has only indexes of newer generations: not attached', {
          tenantId,
          timelineId: id,
          generation: location.generation,
        })
    }
    if (indexes.size === 0) {
      throw new NotFoundError(
        `tenant ${tenantId} has no timeline in remote storage ${remote.storage.location} at or below generation ${location.generation}`,
      )
    }
    mkdirSync(path.join(dir, TIMELINES_DIR), { recursive: true })
    writeLocation(path.join(dir, LOCATION_FILE), location)
    t.updateConfig(valid)
    t.register(indexes)
    t.startBackground()
    t.warmIfSecondary()
    ctx.log('info', 'tenant attached from remote storage', {
      tenantId,
      generation: location.generation,
      mode: location.mode,
      timelines: indexes.size,
    })
    return t
  }

  /** The timeline's newest remote index at or below the tenant's generation; null without remote storage. */
  private loadIndex(timelineId: string): Promise<LoadedIndex | null> {
    const remote = this.ctx.remote
    if (!remote) return Promise.resolve(null)
    return loadRemoteIndex(remote.storage, this.tenantId, timelineId, this.loc.generation, {
      backoff: remote.backoff,
    })
  }

  /** Opens the timelines (with their remote index, if any), ancestors before the branches that read them. */
  private register(timelines: ReadonlyMap<string, LoadedIndex | null>): void {
    const tlDir = path.join(this.dir, TIMELINES_DIR)
    const pending = new Map<string, string | null>()
    for (const [id, ix] of timelines)
      pending.set(
        id,
        ix
          ? ix.index.metadata.ancestorTimeline
          : readMetadata(path.join(tlDir, id, METADATA_FILE)).ancestorTimelineId,
      )
    while (pending.size > 0) {
      const ready = [...pending].filter(([, anc]) => anc === null || this.timelineMap.has(anc))
      if (ready.length === 0) {
        throw new EngineStateError(
          `tenant ${this.tenantId}: timelines ${[...pending.keys()].join(', ')} have missing ancestors`,
        )
      }
      for (const [id, anc] of ready) {
        const ancestor = anc ? this.timelineMap.get(anc)! : null
        const tl = Timeline.load(this.env(), id, path.join(tlDir, id), ancestor, timelines.get(id) ?? null)
        this.adopt(tl)
        pending.delete(id)
      }
    }
  }

  /** The attachment's generation. */
  get generation(): number {
    return this.loc.generation
  }

  get mode(): Location['mode'] {
    return this.loc.mode
  }

  get location(): Location {
    return { ...this.loc }
  }

  /**
   * Moves the tenant to another location: a mode at the same generation takes effect at once; a higher
   * generation shuts the upload queues down and starts them again with it, from its newest index. A
   * lower generation is refused: that attachment is over.
   */
  async setLocation(next: Location): Promise<void> {
    if (next.generation < this.loc.generation) {
      throw new EngineStateError(
        `tenant ${this.tenantId} is at generation ${this.loc.generation}: generation ${next.generation} is older and cannot be taken`,
        { hint: 'the control plane issues a new, higher generation for every attach' },
      )
    }
    const newGeneration = next.generation > this.loc.generation
    const wasSecondary = this.loc.mode === 'Secondary'
    writeLocation(path.join(this.dir, LOCATION_FILE), next)
    this.loc = { ...next }
    if (next.mode === 'Secondary' && !wasSecondary) {
      // A secondary runs nothing of its own: the loops stop (joined), the data stays.
      await this.ctx.tasks.shutdown({ tenantId: this.tenantId })
      for (const tl of this.timelines()) await tl.checkpoint()
    }
    for (const tl of this.timelines()) {
      if (!newGeneration) {
        tl.uploads?.setMode(queueMode(next.mode))
        continue
      }
      await tl.uploads?.shutdown()
      tl.restartUploads(await this.loadIndex(tl.timelineId))
    }
    if (wasSecondary && next.mode !== 'Secondary') this.startBackground()
    this.warmIfSecondary()
    this.ctx.log('info', 'tenant location set', {
      tenantId: this.tenantId,
      generation: next.generation,
      mode: next.mode,
    })
  }

  /** The config the tenant runs with. */
  get config(): TenantConfig {
    return effectiveConfig(this.overrides, this.ctx.defaults)
  }

  get configOverrides(): TenantConfigOverrides {
    return { ...this.overrides }
  }

  /** Merges a patch (null removes an override), validates it whole, persists it; loops pick it up live. */
  updateConfig(patch: Record<string, unknown>): TenantConfig {
    const next = applyConfigPatch(this.overrides, patch)
    saveTenantConfig(path.join(this.dir, TENANT_CONFIG_FILE), next)
    this.overrides = next
    return this.config
  }

  timelines(): Timeline[] {
    return [...this.timelineMap.values()]
  }

  timeline(id: string): Timeline {
    const tl = this.timelineMap.get(parseId(id, 'timeline'))
    if (!tl) throw new NotFoundError(`timeline ${id} not found in tenant ${this.tenantId}`)
    return tl
  }

  /** A root timeline whose history starts at `initLsn`. */
  createTimeline(initLsn: Lsn, timelineId = generateId()): Timeline {
    const id = this.newTimelineDir(timelineId)
    const tl = Timeline.create(this.env(), id, path.join(this.dir, TIMELINES_DIR, id), { initLsn })
    this.adopt(tl)
    return tl
  }

  /**
   * A branch of `ancestorId` at `lsn` (default: its last_record_lsn), at the LSN a read as of it runs at
   * (resolveReadLsn), with the cutoff GC would apply now: below it, history may go at any moment. Writes
   * metadata only: the branch reads everything below the branch point from its ancestor.
   */
  branch(ancestorId: string, opts: { lsn?: Lsn; timelineId?: string } = {}): Timeline {
    const anc = this.timeline(ancestorId)
    const c = this.config
    const cutoff = gcCutoff(anc, { gcHorizon: c.gc_horizon, pitrInterval: c.pitr_interval })
    const { lsn } = resolveReadLsn(
      { ...anc.readBounds, gcCutoffLsn: cutoff },
      { lsn: opts.lsn, what: 'branch point', where: `timeline ${anc.timelineId}` },
    )
    const id = this.newTimelineDir(opts.timelineId ?? generateId())
    const tl = Timeline.create(this.env(), id, path.join(this.dir, TIMELINES_DIR, id), {
      initLsn: lsn,
      ancestor: anc,
      latestGcCutoffLsn: anc.latestGcCutoffLsn,
      // At the ancestor's tip the record before is known, as in Neon: WAL written on the branch (and a
      // basebackup's checkpoint) links back to it instead of to nothing.
      prevRecordLsn: lsn === anc.lastRecordLsn ? anc.prevRecordLsn : null,
    })
    this.adopt(tl)
    return tl
  }

  /** Branch points that child timelines still read from `tl`. */
  retainLsns(tl: Timeline): Lsn[] {
    return this.children(tl).map((t) => t.ancestorLsn)
  }

  /** Timelines branched from `tl`. */
  children(tl: Timeline): Timeline[] {
    return this.timelines().filter((t) => t.ancestor === tl)
  }

  async compact(
    tl: Timeline,
    force = false,
  ): Promise<{ compaction: CompactionResult | null; images: ImageResult }> {
    return tl.exclusive(async () => {
      const c = this.config
      const compaction = await compactL0(tl, {
        threshold: c.compaction_threshold,
        targetSize: c.compaction_target_size,
        force,
      })
      if (compaction) {
        tl.log('info', 'compaction done', {
          lsn: lsnRange(compaction.lsnStart, compaction.lsnEnd),
          l0_in: compaction.inputs,
          l1_out: compaction.outputs,
          entries: compaction.entries,
          bytes_in: compaction.bytesIn,
          bytes_out: compaction.bytesOut,
          ms: compaction.elapsedMs,
        })
      } else {
        // The loop runs every compaction_period on every timeline: mostly there is nothing to do.
        tl.log('debug', 'compaction skipped', {
          l0: tl.layers.l0().length,
          threshold: c.compaction_threshold,
        })
      }
      const images = await createImageLayers(tl, {
        threshold: c.image_creation_threshold,
        targetSize: c.compaction_target_size,
        force,
        // The filter reads the datadir's directories: remote-only layers are fetched for it.
        keyFilter: await withLocalLayers(() => this.ctx.imageKeyFilter?.(tl, tl.diskConsistentLsn)),
      })
      tl.log(images.created > 0 ? 'info' : 'debug', 'image layers created', {
        lsn: formatLsn(images.lsn),
        count: images.created,
        partitions: images.partitions,
        keys: images.keys,
        bytes: images.bytes,
        ms: images.elapsedMs,
      })
      return { compaction, images }
    })
  }

  async gc(tl: Timeline, overrides: { gcHorizon?: number; pitrInterval?: number } = {}): Promise<GcResult> {
    return tl.exclusive(async () => {
      const c = this.config
      const res = await gcTimeline(tl, {
        gcHorizon: overrides.gcHorizon ?? c.gc_horizon,
        pitrInterval: overrides.pitrInterval ?? c.pitr_interval,
        retainLsns: this.retainLsns(tl),
      })
      tl.log(res.removed > 0 ? 'info' : 'debug', 'gc done', {
        cutoff: formatLsn(res.cutoff),
        layers_total: res.layersTotal,
        layers_removed: res.removed,
        bytes_removed: res.bytesRemoved,
        needed_by_cutoff: res.neededByCutoff,
        needed_by_branches: res.neededByBranches,
        ms: res.elapsedMs,
      })
      return res
    })
  }

  /**
   * Stops the tenant's tasks (waiting for them), then flushes (graceful) or drops in-memory data. A
   * graceful shutdown also waits a while for the uploads; what is left is uploaded at the next start.
   */
  async shutdown(opts: { flush: boolean }): Promise<void> {
    await this.ctx.tasks.shutdown({ tenantId: this.tenantId })
    await this.closeTimelines(opts)
  }

  /**
   * Stops the tenant for detach: its tasks (joined), a flush, and its uploads waited for up to `ms`.
   * Uploads that do not finish are an error naming them, and the tenant goes on running (nothing of it
   * may be removed). A stale or secondary location uploads nothing: its data is a newer attachment's.
   */
  async stopForDetach(ms: number): Promise<void> {
    await this.ctx.tasks.shutdown({ tenantId: this.tenantId })
    try {
      await this.flushToRemote(ms, 'detached')
    } catch (err) {
      this.startBackground()
      throw err
    }
    await this.closeTimelines({ flush: false })
  }

  /**
   * Flushes every timeline and waits up to `ms` for the uploads, so that remote storage holds all the
   * tenant has ingested (before it hands over to another pageserver). Uploads that do not finish are an
   * error naming them; `becoming` says what the tenant was to become ("detached").
   */
  async flushToRemote(ms: number, becoming: string): Promise<void> {
    for (const tl of this.timelines()) await tl.checkpoint()
    if (await this.drainUploads(ms)) return
    const pending = this.timelines().flatMap((tl) =>
      (tl.uploads?.describePending() ?? []).map((op) => `${op} of timeline ${tl.timelineId}`),
    )
    throw new EngineStateError(
      `tenant ${this.tenantId} cannot be ${becoming}: not uploaded after ${ms} ms: ${pending.slice(0, 5).join('; ')}${pending.length > 5 ? ` and ${pending.length - 5} more` : ''}`,
      { kind: 'unavailable', hint: `check that remote storage is reachable, then try again` },
    )
  }

  private async closeTimelines(opts: { flush: boolean }): Promise<void> {
    for (const tl of this.timelines()) {
      if (opts.flush) await tl.checkpoint()
    }
    if (opts.flush) await this.drainUploads(UPLOAD_DRAIN_MS)
    for (const tl of this.timelines()) {
      await tl.uploads?.shutdown()
      this.ctx.memory.remove(tl)
      tl.close()
    }
  }

  /** Waits until every timeline's uploads are done, or `ms` passed; true when they are done. */
  private async drainUploads(ms: number): Promise<boolean> {
    if (queueMode(this.loc.mode) === 'AttachedStale') return true
    const queues = this.timelines().flatMap((tl) => (tl.uploads ? [tl.uploads] : []))
    if (queues.length === 0) return true
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([
      Promise.all(queues.map((q) => q.flush())).then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms)
      }),
    ]).finally(() => clearTimeout(timer))
    if (!done) {
      this.ctx.log('warn', 'uploads not done at shutdown: the next start uploads the rest', {
        tenantId: this.tenantId,
        ops_pending: queues.reduce((n, q) => n + q.pending, 0),
        waited_ms: ms,
      })
    }
    return done
  }

  /**
   * Deletes a timeline that no branch reads from: `beforeRemove` runs, its tasks are stopped and joined,
   * then its directory goes. A timeline with children is refused (they read their history through it).
   */
  async deleteTimeline(
    timelineId: string,
    opts: { beforeRemove?: (tl: Timeline) => Promise<void> } = {},
  ): Promise<void> {
    const tl = this.timeline(timelineId)
    const children = this.children(tl)
    if (children.length > 0) {
      throw new EngineStateError(
        `timeline ${tl.timelineId} has child timelines (${children.map((c) => c.timelineId).join(', ')}): delete them first`,
      )
    }
    // The caller's writers (a WAL receiver) stop before the timeline goes, and only once it may go.
    await opts.beforeRemove?.(tl)
    this.timelineMap.delete(tl.timelineId)
    await this.ctx.tasks.shutdown({ tenantId: this.tenantId, timelineId: tl.timelineId })
    // Its remote objects stay (deleting a timeline remotely is not done yet): leaked, not wrong.
    await tl.uploads?.shutdown()
    this.ctx.memory.remove(tl)
    tl.close()
    const dir = path.join(this.dir, TIMELINES_DIR, tl.timelineId)
    // Renamed away first, so a crash mid-removal never leaves a half-deleted timeline that loads.
    const doomed = `${dir}${DELETED_SUFFIX}`
    renameSync(dir, doomed)
    fsyncDir(path.join(this.dir, TIMELINES_DIR))
    rmSync(doomed, { recursive: true, force: true })
  }

  private newTimelineDir(timelineId: string): string {
    const id = parseId(timelineId, 'timeline')
    if (this.timelineMap.has(id))
      throw new EngineStateError(`timeline ${id} already exists in tenant ${this.tenantId}`)
    mkdirSync(path.join(this.dir, TIMELINES_DIR, id), { recursive: true })
    return id
  }

  private adopt(tl: Timeline): void {
    this.timelineMap.set(tl.timelineId, tl)
    this.ctx.memory.add(tl)
  }

  private env(): TimelineEnv {
    return {
      tenantId: this.tenantId,
      cache: this.ctx.cache,
      redo: this.ctx.redo,
      conf: () => this.config,
      log: this.ctx.log,
      afterWrite: () => this.ctx.memory.enforce(),
      requestFlush: (tl) => this.requestFlush(tl),
      quietUntil: this.ctx.quietUntil ?? ((last) => last),
      openUploadQueue: this.ctx.remote && ((timelineId, index) => this.openUploadQueue(timelineId, index)),
      fetchLayer: this.ctx.remote && ((timelineId, layer, gen) => this.fetchLayer(timelineId, layer, gen)),
    }
  }

  private openUploadQueue(timelineId: string, index: LoadedIndex | null): UploadQueue {
    const remote = this.ctx.remote!
    const { tenantId } = this
    const validate = remote.validate
    const generation = this.loc.generation
    return new UploadQueue({
      storage: remote.storage,
      tenantId,
      timelineId,
      generation,
      index,
      mode: queueMode(this.loc.mode),
      validate: validate && (() => validate(tenantId, generation)),
      log: (level, msg, fields) => this.ctx.log(level, msg, { tenantId, timelineId, ...fields }),
      backoff: remote.backoff,
    })
  }

  private fetchLayer(timelineId: string, layer: HistoricLayer, generation: number): Promise<void> {
    const remote = this.ctx.remote!
    return downloadLayerFile({
      storage: remote.storage,
      key: layerKey(this.tenantId, timelineId, path.basename(layer.path), generation),
      file: layer.path,
      size: layer.fileSize,
      log: this.ctx.log,
      fields: { tenantId: this.tenantId, timelineId },
      retry: { backoff: remote.backoff },
    })
  }

  /**
   * A secondary location keeps a warm copy: every layer of each timeline's index is downloaded, so an
   * attach here later serves its first reads from local disk.
   */
  private warmIfSecondary(): void {
    if (this.loc.mode !== 'Secondary' || !this.ctx.remote) return
    this.ctx.tasks.spawn(
      'warm',
      { tenantId: this.tenantId },
      'download the layers of a secondary location',
      async (signal) => {
        const started = performance.now()
        let layers = 0
        for (const tl of this.timelines()) {
          if (signal.aborted) return
          layers += await tl.downloadLayers()
        }
        this.ctx.log('info', 'secondary location warm', {
          tenantId: this.tenantId,
          layers_downloaded: layers,
          ms: Math.round(performance.now() - started),
        })
      },
    )
  }

  private requestFlush(tl: Timeline): void {
    if (this.flushing.has(tl)) return
    this.flushing.add(tl)
    this.ctx.tasks.spawn(
      'flush',
      { tenantId: this.tenantId, timelineId: tl.timelineId },
      'flush frozen layers',
      async (signal) => {
        try {
          while (tl.frozenLayerCount > 0 && !signal.aborted) await tl.flushFrozen(signal)
        } finally {
          this.flushing.delete(tl)
        }
        if (tl.layers.l0().length >= this.config.compaction_threshold) this.compactionKick?.()
      },
    )
  }

  private startBackground(): void {
    if (!this.ctx.background || this.loc.mode === 'Secondary') return
    const scope = { tenantId: this.tenantId }
    const tasks = this.ctx.tasks
    const compaction = tasks.loop(
      'compaction',
      scope,
      'compaction and image layers',
      () => this.config.compaction_period,
      async (signal) => {
        for (const tl of this.timelines()) {
          if (signal.aborted) return
          await this.compact(tl)
        }
      },
    )
    this.compactionKick = () => compaction.kick()
    tasks.loop(
      'gc',
      scope,
      'garbage collection',
      () => this.config.gc_period,
      async (signal) => {
        for (const tl of this.timelines()) {
          if (signal.aborted) return
          await this.gc(tl)
        }
      },
    )
    tasks.loop(
      'housekeeping',
      scope,
      'freeze idle open layers',
      () => this.config.compaction_period,
      async () => {
        for (const tl of this.timelines()) tl.freezeIfOld()
      },
    )
  }
}

/** What a location's mode lets the upload queue do: a secondary, like a stale one, writes nothing. */
const queueMode = (mode: Location['mode']): AttachMode => (mode === 'Secondary' ? 'AttachedStale' : mode)
