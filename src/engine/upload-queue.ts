/**
 * The upload queue of one timeline: what makes remote storage a consistent copy of the timeline while
 * layers come and go locally. Its ops are uploads of layer files, uploads of the index, and deletions,
 * run in the background with these rules (Neon's, remote_timeline_client.rs):
 *
 * - an index is uploaded only after every layer it lists is in storage, so any uploaded index is a
 *   complete timeline up to its disk_consistent_lsn;
 * - a layer is deleted only after an uploaded index no longer lists it, and only while the control plane
 *   confirms the generation: a stale attachment (another pageserver has a newer one) never deletes, since
 *   the newer attachment's index may still list the object;
 * - indexes never overtake each other: they go one at a time in order, and of those waiting only the
 *   newest whose layers are all in storage is uploaded (the older ones say less and are dropped);
 * - layer uploads run in parallel (a few at a time) and may pass indexes queued before them, which do
 *   not list them;
 * - every op is retried with backoff until it succeeds or the queue shuts down: storage that is away for
 *   a while only delays the remote copy.
 *
 * remote_consistent_lsn, what safekeepers may trim WAL up to, is the disk_consistent_lsn of the newest
 * uploaded index, and moves only after the generation is confirmed for it.
 *
 * A layer that compaction or GC removes locally before its upload began is not uploaded at all: the index
 * that drops it follows, and the one before, which listed it, is never uploaded. The queue is not
 * persisted; it starts from the newest index of its generation or older (loadRemoteIndex, read by the
 * timeline's load, which reconciles the local files against it), and layers that index lists with the
 * same size are not uploaded again.
 *
 * Deletions a stop dropped are not lost: at start, every layer object of the timeline that the loaded
 * index does not list and whose generation is at most the index's is garbage (a deletion that never ran,
 * or an upload whose index never came), and the timeline queues its deletion here, through the same
 * rules as any other (after an uploaded index, only while the generation is confirmed). Objects of a
 * newer generation than the index are never touched: they may be a later attachment's.
 *
 * The attachment's mode (location.ts) gates the rest: AttachedSingle runs everything; AttachedMulti
 * uploads but holds deletions (another pageserver attached to the tenant may still read the objects);
 * AttachedStale holds every op, so nothing is written or deleted and remote_consistent_lsn stays. Held ops
 * run when the mode allows them again.
 */
import { existsSync } from 'node:fs'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogLevel } from '../lib/log.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { EngineStateError } from './errors.js'
import {
  encodeIndexPart,
  INDEX_PART_VERSION,
  type IndexLayerMetadata,
  type IndexMetadata,
  type IndexPart,
} from './index-part.js'
import type { AttachMode } from './location.js'
import type { LoadedIndex } from './remote-index.js'
import { indexKey, layerKey } from './remote-layout.js'
import type { RemoteStorage } from './remote-storage.js'
import { pause } from './task-manager.js'

export const DEFAULT_UPLOAD_CONCURRENCY = 4
export const DEFAULT_BACKOFF = { baseMs: 100, maxMs: 30_000 }

export interface UploadQueueOptions {
  storage: RemoteStorage
  tenantId: string
  timelineId: string
  generation: number
  /** The newest index in storage at or below `generation` (loadRemoteIndex), null when there is none. */
  index: LoadedIndex | null
  /** What the attachment may do in storage (default AttachedSingle: everything). */
  mode?: AttachMode
  /** Whether `generation` is still the tenant's (the control plane answers); default: always. */
  validate?: () => Promise<boolean>
  /** Logs a line about the timeline (its ids are added by the caller). */
  log: (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void
  concurrency?: number
  backoff?: { baseMs: number; maxMs: number }
}

interface LayerOp {
  kind: 'layer'
  seq: number
  name: string
  localPath: string
  size: number
  running: boolean
}

interface IndexOp {
  kind: 'index'
  seq: number
  /** Layer name → size, as the timeline has them. */
  layers: ReadonlyMap<string, number>
  metadata: IndexMetadata
}

/** A layer object to delete: of `generation`, or (null) of whichever generation the queue knows it by. */
interface DeleteTarget {
  name: string
  generation: number | null
}

interface DeleteOp {
  kind: 'delete'
  seq: number
  targets: DeleteTarget[]
  /** The index scheduled last before this deletion: the one that dropped the names. */
  afterIndexSeq: number
}

type Op = LayerOp | IndexOp | DeleteOp

/** The local file went before its upload could read it: the layer is no longer the timeline's. */
class LayerGoneError extends ZenithError {
  static override kind: ErrorKind = 'not_found'
}

class QueueStoppedError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
}

export class UploadQueue {
  /** Objects of this timeline's layers known to be in storage, with their size and generation. */
  private readonly remote = new Map<string, IndexLayerMetadata>()
  private uploaded: { seq: number; index: IndexPart; valid: boolean } | null = null
  private visibleLsn: Lsn = 0
  private stale = false
  private ops: Op[] = []
  private seq = 0
  private ready = false
  private stopped = false
  private layersRunning = 0
  private indexRunning = false
  private deleting: Set<string> | null = null
  private mode: AttachMode
  private readonly abort = new AbortController()
  private readonly running = new Set<Promise<void>>()
  private waiters: { seq: number; resolve: () => void; reject: (err: Error) => void }[] = []
  private readonly validate: () => Promise<boolean>
  private readonly concurrency: number
  private readonly backoff: { baseMs: number; maxMs: number }

  constructor(private readonly opts: UploadQueueOptions) {
    this.validate = opts.validate ?? (async () => true)
    this.concurrency = opts.concurrency ?? DEFAULT_UPLOAD_CONCURRENCY
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF
    this.mode = opts.mode ?? 'AttachedSingle'
    this.track(this.init(opts.index))
  }

  get generation(): number {
    return this.opts.generation
  }

  /** The disk_consistent_lsn of the newest uploaded index whose generation was confirmed. */
  get remoteConsistentLsn(): Lsn {
    return this.visibleLsn
  }

  /** The newest index in storage that this queue knows of (loaded at start or uploaded since). */
  get uploadedIndex(): IndexPart | null {
    return this.uploaded?.index ?? null
  }

  /** True once the control plane said another attachment has a newer generation. */
  get isStale(): boolean {
    return this.stale
  }

  /** Operations not yet done. */
  get pending(): number {
    return this.ops.length
  }

  /** Operations not yet done, as `upload <layer>`, `index`, `delete <n> layers` (for errors). */
  describePending(): string[] {
    return this.ops.map((op) =>
      op.kind === 'layer'
        ? `upload of ${op.name}`
        : op.kind === 'index'
          ? 'upload of the index'
          : `deletion of ${op.targets.length} layers`,
    )
  }

  get attachMode(): AttachMode {
    return this.mode
  }

  /** Changes what the attachment may do; held ops start when the new mode allows them. */
  setMode(mode: AttachMode): void {
    if (mode === this.mode) return
    this.opts.log('info', 'upload queue mode changed', {
      from: this.mode,
      to: mode,
      ops_pending: this.ops.length,
    })
    this.mode = mode
    this.pump()
  }

  scheduleLayer(name: string, localPath: string, size: number): void {
    this.assertRunning()
    // The same name again (a layer made anew): a deletion of the old object still waiting must not
    // remove what is uploaded now.
    for (const op of this.ops)
      if (op.kind === 'delete') op.targets = op.targets.filter((t) => t.name !== name)
    this.push({ kind: 'layer', seq: ++this.seq, name, localPath, size, running: false })
  }

  /** An index of these layers (name → size) and metadata, uploaded once all of them are in storage. */
  scheduleIndex(layers: ReadonlyMap<string, number>, metadata: IndexMetadata): void {
    this.assertRunning()
    this.push({ kind: 'index', seq: ++this.seq, layers: new Map(layers), metadata })
  }

  /** Deletes the layers' objects once an uploaded index (the last scheduled or a newer) drops them. */
  scheduleDelete(names: readonly string[]): void {
    this.scheduleDeleteObjects(names.map((name) => ({ name, generation: null })))
  }

  /** Deletes these layer objects (name and generation: garbage found at start) under the same rules. */
  scheduleDeleteObjects(targets: readonly DeleteTarget[]): void {
    this.assertRunning()
    if (targets.length === 0) return
    let afterIndexSeq = this.uploaded?.seq ?? -1
    for (const op of this.ops) if (op.kind === 'index') afterIndexSeq = op.seq
    this.push({ kind: 'delete', seq: ++this.seq, targets: [...targets], afterIndexSeq })
  }

  /** Resolves when everything scheduled so far is done; rejects if the queue shuts down first. */
  flush(): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError())
    const seq = this.seq
    if (this.ops.every((op) => op.seq > seq) && this.ready) return Promise.resolve()
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }))
  }

  /** Stops: retries end, running ops are waited for, what is still queued is dropped. */
  async shutdown(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.abort.abort()
    while (this.running.size > 0) await Promise.allSettled([...this.running])
    if (this.ops.length > 0) this.opts.log('info', 'upload queue shut down', { ops_dropped: this.ops.length })
    const err = this.stoppedError()
    for (const w of this.waiters.splice(0)) w.reject(err)
    this.ops = []
  }

  private push(op: Op): void {
    this.ops.push(op)
    this.pump()
  }

  private assertRunning(): void {
    if (this.stopped) throw this.stoppedError()
  }

  private stoppedError(): EngineStateError {
    return new EngineStateError(
      `the upload queue of timeline ${this.opts.timelineId} is shut down with ${this.ops.length} operations not done`,
    )
  }

  /**
   * Runs an op (or the start) in the background. One that fails for good (a bug: retries end only for
   * those) is dropped with an error line, rather than started again and again.
   */
  private track(p: Promise<void>, op?: Op): void {
    const run = p.catch((err) => {
      if (err instanceof QueueStoppedError) return
      this.opts.log('error', 'upload queue operation failed: dropped', {
        op: op?.kind ?? 'start',
        error: (err as Error).message,
      })
      if (op) this.done(op)
      else this.ready = true
    })
    this.running.add(run)
    void run.finally(() => {
      this.running.delete(run)
      this.pump()
    })
  }

  /** Starts whatever the rules allow now. */
  private pump(): void {
    if (!this.ready || this.stopped) return
    if (this.mode === 'AttachedStale') {
      this.settleWaiters()
      return
    }
    for (const op of [...this.ops]) {
      if (this.layersRunning >= this.concurrency) break
      if (op.kind !== 'layer' || op.running || this.deleting?.has(op.name)) continue
      if (this.remote.get(op.name)?.fileSize === op.size) {
        // Already in storage: loaded with the index at start, or a deletion was called off.
        this.done(op)
        continue
      }
      op.running = true
      this.layersRunning++
      this.track(
        this.uploadLayer(op).finally(() => this.layersRunning--),
        op,
      )
    }
    if (!this.indexRunning) {
      const next = this.nextIndex()
      if (next) {
        this.indexRunning = true
        this.track(
          this.uploadIndex(next).finally(() => (this.indexRunning = false)),
          next,
        )
      }
    }
    if (!this.deleting) {
      const next = this.nextDelete()
      if (next) {
        this.deleting = new Set(next.targets.map((t) => t.name))
        this.track(
          this.deleteLayers(next).finally(() => (this.deleting = null)),
          next,
        )
      }
    }
    this.settleWaiters()
  }

  /** The newest index whose layers are all in storage; older ones waiting are dropped for it. */
  private nextIndex(): IndexOp | null {
    const indexes = this.ops.filter((op): op is IndexOp => op.kind === 'index')
    for (let i = indexes.length - 1; i >= 0; i--) {
      const ix = indexes[i]
      const ready = [...ix.layers.keys()].every(
        (name) =>
          this.remote.has(name) &&
          !this.ops.some((op) => op.kind === 'layer' && op.name === name && op.seq < ix.seq),
      )
      if (!ready) continue
      if (i > 0) {
        const older = new Set<Op>(indexes.slice(0, i))
        this.ops = this.ops.filter((op) => !older.has(op))
        this.opts.log('debug', 'older indexes coalesced', { dropped: i })
      }
      return ix
    }
    return null
  }

  /** A deletion whose names an uploaded, confirmed index no longer lists; with a stale generation, none. */
  private nextDelete(): DeleteOp | null {
    const up = this.uploaded
    if (!up || this.mode !== 'AttachedSingle') return null
    const listed = (t: DeleteTarget) => {
      const l = up.index.layers[t.name]
      return l !== undefined && (t.generation === null || l.generation === t.generation)
    }
    for (const op of this.ops) {
      if (op.kind !== 'delete' || up.seq < op.afterIndexSeq) continue
      if (op.targets.some(listed)) continue
      if (this.stale) {
        this.opts.log('warn', 'not deleting remote layers: the generation is stale', {
          generation: this.opts.generation,
          layers: op.targets.length,
        })
        this.done(op)
        continue
      }
      if (up.valid) return op
    }
    return null
  }

  private done(op: Op): void {
    this.ops = this.ops.filter((o) => o !== op)
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0 || !this.ready) return
    const oldest = this.ops.reduce((m, op) => Math.min(m, op.seq), Number.POSITIVE_INFINITY)
    const ready = this.waiters.filter((w) => w.seq < oldest)
    this.waiters = this.waiters.filter((w) => w.seq >= oldest)
    for (const w of ready) w.resolve()
  }

  /** Starts from the loaded index (what storage already holds), with its generation confirmed. */
  private async init(loaded: LoadedIndex | null): Promise<void> {
    if (loaded) {
      const { index } = loaded
      for (const [name, l] of Object.entries(index.layers)) this.remote.set(name, l)
      const valid = await this.confirm()
      this.uploaded = { seq: -1, index, valid }
      if (valid) this.visibleLsn = index.metadata.diskConsistentLsn
    }
    this.ready = true
  }

  private async uploadLayer(op: LayerOp): Promise<void> {
    const started = performance.now()
    const gen = this.opts.generation
    const key = layerKey(this.opts.tenantId, this.opts.timelineId, op.name, gen)
    try {
      await this.retry(
        `upload of layer ${op.name}`,
        async () => {
          try {
            await this.opts.storage.putFile(key, op.localPath)
          } catch (err) {
            if (!existsSync(op.localPath)) throw new LayerGoneError(`${op.localPath} is gone`)
            throw err
          }
        },
        (err) => !(err instanceof LayerGoneError),
      )
    } catch (err) {
      if (!(err instanceof LayerGoneError)) throw err
      this.opts.log('info', 'layer removed locally before its upload: not uploaded', { layer: op.name })
      this.done(op)
      return
    }
    this.remote.set(op.name, { fileSize: op.size, generation: gen })
    this.done(op)
    this.opts.log('info', 'layer uploaded', { layer: op.name, bytes: op.size, ms: msSince(started) })
  }

  private async uploadIndex(op: IndexOp): Promise<void> {
    const started = performance.now()
    const layers: Record<string, IndexLayerMetadata> = {}
    for (const name of op.layers.keys()) layers[name] = this.remote.get(name)!
    const index: IndexPart = { version: INDEX_PART_VERSION, layers, metadata: op.metadata }
    const key = indexKey(this.opts.tenantId, this.opts.timelineId, this.opts.generation)
    const body = encodeIndexPart(index)
    await this.retry('upload of the index', () => this.opts.storage.put(key, body))
    this.uploaded = { seq: op.seq, index, valid: false }
    const valid = await this.confirm()
    this.uploaded.valid = valid
    const lsn = op.metadata.diskConsistentLsn
    if (valid) this.visibleLsn = Math.max(this.visibleLsn, lsn)
    this.done(op)
    this.opts.log('info', 'index uploaded', {
      key,
      layers: op.layers.size,
      disk_consistent_lsn: formatLsn(lsn),
      remote_consistent_lsn: formatLsn(this.visibleLsn),
      ms: msSince(started),
    })
  }

  /** Asks whether the generation is still current; a stale answer is final. */
  private async confirm(): Promise<boolean> {
    if (this.stale) return false
    const valid = await this.retry('validation of the generation', () => this.validate())
    if (!valid) {
      this.stale = true
      this.opts.log('warn', 'generation is stale: remote_consistent_lsn stays and nothing is deleted', {
        generation: this.opts.generation,
        remote_consistent_lsn: formatLsn(this.visibleLsn),
      })
    }
    return valid
  }

  private async deleteLayers(op: DeleteOp): Promise<void> {
    const started = performance.now()
    const targets = op.targets.flatMap((t) => {
      const generation = t.generation ?? this.remote.get(t.name)?.generation
      return generation === undefined ? [] : [{ name: t.name, generation }]
    })
    const keys = targets.map((t) => layerKey(this.opts.tenantId, this.opts.timelineId, t.name, t.generation))
    if (keys.length > 0) await this.retry('deletion of remote layers', () => this.opts.storage.delete(keys))
    for (const t of targets)
      if (this.remote.get(t.name)?.generation === t.generation) this.remote.delete(t.name)
    this.done(op)
    if (keys.length > 0)
      this.opts.log('info', 'remote layers deleted', { layers: keys.length, ms: msSince(started) })
  }

  /**
   * Runs `fn` until it succeeds, waiting longer after each failure (up to backoff.maxMs); a bug or an
   * error `retryable` refuses ends it at once, and so does shutdown.
   */
  private async retry<T>(what: string, fn: () => Promise<T>, retryable = (_: unknown) => true): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new QueueStoppedError(`${what}: the upload queue is shut down`)
      try {
        return await fn()
      } catch (err) {
        if (!retryable(err) || (err instanceof ZenithError && err.kind === 'bug')) throw err
        if (this.stopped) throw new QueueStoppedError(`${what}: the upload queue is shut down`)
        const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (attempt - 1))
        this.opts.log('warn', `${what} failed, will retry`, {
          attempt,
          retry_in_ms: delay,
          error: (err as Error).message,
        })
        await pause(delay, this.abort.signal)
      }
    }
  }
}

const msSince = (since: number): number => Math.round(performance.now() - since)
