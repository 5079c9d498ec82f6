/**
 * Layer writing that runs off the main thread: merging L0 layers (compaction) and writing a frozen
 * in-memory layer out as an L0 (flush). Jobs are plain data — file paths and typed arrays — so that a
 * worker thread can take them; `runLayerJobInWorker` starts one per job.
 *
 * A worker is an isolate of its own, and zenith must run under a 2 GiB RLIMIT_AS: with V8's defaults one
 * reserves 510 MiB of code range alone, so the pageserver died at its first worker flush. Each is sized
 * by WORKER_LIMITS, and no more run at once than there are cores, across all tenants and timelines
 * (each timeline flushes and each tenant compacts on its own): the rest wait for a slot, first come first
 * served. More would not finish sooner; they would only share the cores and add isolates.
 */

import { closeSync, openSync, readSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { type ResourceLimits, Worker } from 'node:worker_threads'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { arenaBuffer } from '../postgres/buffer-arena.js'
import { type MergeJob, mergeLayers } from './compaction-merge.js'
import { KEY_MAX, KEY_MIN, KEY_SIZE } from './key.js'
import { LayerFileWriter } from './layer-file.js'
import { storedForm } from './value.js'

/** A frozen layer's index, in key order: the values are in its ephemeral file. */
export interface FlushJob {
  ephemeralPath: string
  dir: string
  tenantId: string
  timelineId: string
  lsnStart: number
  lsnEnd: number
  /** Keys, 18 bytes each, sorted. */
  keys: Uint8Array
  /** Versions per key. */
  counts: Uint32Array
  /** Triples [lsn, offset, length * 2 + willInit], by key then LSN. */
  versions: Float64Array
}

export type LayerJob = ({ kind: 'merge' } & MergeJob) | ({ kind: 'flush' } & FlushJob)

export function runLayerJob(job: LayerJob): unknown {
  return job.kind === 'merge' ? mergeLayers(job) : writeFrozenLayer(job)
}

/** Writes a frozen layer's values, read from its ephemeral file, as one L0 delta layer; returns its path. */
export function writeFrozenLayer(job: FlushJob): string {
  const fd = openSync(job.ephemeralPath, 'r')
  const w = new LayerFileWriter({
    dir: job.dir,
    kind: 'delta',
    tenantId: job.tenantId,
    timelineId: job.timelineId,
    keyStart: KEY_MIN,
    keyEnd: KEY_MAX,
    lsnStart: job.lsnStart,
    lsnEnd: job.lsnEnd,
  })
  try {
    const keys = Buffer.from(job.keys.buffer, job.keys.byteOffset, job.keys.byteLength)
    let v = 0
    for (let k = 0; k < job.counts.length; k++) {
      const key = keys.subarray(k * KEY_SIZE, (k + 1) * KEY_SIZE)
      for (let i = 0; i < job.counts[k]; i++, v += 3) {
        const packed = job.versions[v + 2]
        const len = Math.floor(packed / 2)
        const raw = arenaBuffer(len)
        let done = 0
        while (done < len) {
          const n = readSync(fd, raw, done, len - done, job.versions[v + 1] + done)
          if (n === 0)
            throw new Error(
              `ephemeral file ${job.ephemeralPath} ends before offset ${job.versions[v + 1] + done}`,
            )
          done += n
        }
        const { bytes, image } = storedForm(raw)
        w.add(key, job.versions[v], bytes, packed % 2 === 1, image)
      }
    }
    return w.finish().path
  } catch (err) {
    w.abort()
    throw err
  } finally {
    closeSync(fd)
  }
}

export class LayerJobError extends ZenithError {
  static override kind: ErrorKind = 'bug'
  override name = 'LayerJobError'
}

/**
 * What one worker may reserve. Code range: the jobs run one module's code, which needs a few MiB, not
 * the default 510. Heap: values and the layer index live in Buffers, outside the V8 heap; a job that
 * outgrows it fails (ERR_WORKER_OUT_OF_MEMORY) as a LayerJobError instead of taking the process down.
 */
export const WORKER_LIMITS: ResourceLimits = {
  maxOldGenerationSizeMb: 256,
  maxYoungGenerationSizeMb: 32,
  codeRangeSizeMb: 16,
  stackSizeMb: 4,
}

export const MAX_LAYER_WORKERS = Math.max(1, availableParallelism())

let workersRunning = 0
let workersPeak = 0
const waitingForWorker: (() => void)[] = []

/** Workers running and waiting now, and the most that ever ran at once in this process. */
export function layerWorkers(): { running: number; waiting: number; peak: number } {
  return { running: workersRunning, waiting: waitingForWorker.length, peak: workersPeak }
}

async function workerSlot(): Promise<() => void> {
  if (workersRunning >= MAX_LAYER_WORKERS) await new Promise<void>((r) => waitingForWorker.push(r))
  else workersRunning++
  workersPeak = Math.max(workersPeak, workersRunning)
  // The slot passes straight to the next waiter, so a new job cannot overtake the queue.
  return () => {
    const next = waitingForWorker.shift()
    if (next) next()
    else workersRunning--
  }
}

/**
 * Runs a job in a worker thread once one of MAX_LAYER_WORKERS slots is free: from compiled JavaScript,
 * or from TypeScript sources through tsx.
 */
export async function runLayerJobInWorker<T>(job: LayerJob, what: string): Promise<T> {
  const release = await workerSlot()
  try {
    return await runInWorker<T>(job, what)
  } finally {
    release()
  }
}

function runInWorker<T>(job: LayerJob, what: string): Promise<T> {
  const fromSource = import.meta.url.endsWith('.ts')
  const url = new URL(fromSource ? './layer-worker.ts' : './layer-worker.js', import.meta.url)
  return new Promise((resolve, reject) => {
    // From sources, the worker first registers tsx's loader in its own thread, then imports the entry.
    const worker = fromSource
      ? new Worker(
          `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}) })`,
          { eval: true, workerData: job, resourceLimits: WORKER_LIMITS },
        )
      : new Worker(url, { workerData: job, resourceLimits: WORKER_LIMITS })
    // Settled only at 'exit': until then the isolate still holds its thread and address space, and
    // the caller's slot must not pass to the next job.
    let outcome: { result: T } | { error: LayerJobError } | undefined
    worker.once('message', (msg: { ok: boolean; result?: T; error?: string }) => {
      outcome = msg.ok
        ? { result: msg.result as T }
        : { error: new LayerJobError(`${what} failed: ${msg.error}`) }
    })
    worker.once('error', (err) => {
      outcome ??= { error: new LayerJobError(`${what} failed in its worker: ${err.message}`) }
    })
    worker.once('exit', (code) => {
      if (outcome === undefined) reject(new LayerJobError(`${what}: worker exited with code ${code}`))
      else if ('error' in outcome) reject(outcome.error)
      else resolve(outcome.result)
    })
  })
}
