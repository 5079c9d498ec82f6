/**
 * Layer writing that runs off the main thread: merging L0 layers (compaction) and writing a frozen
 * in-memory layer out as an L0 (flush). Jobs are plain data — file paths and typed arrays — so that a
 * worker thread can take them; `runLayerJobInWorker` starts one per job.
 */

import { closeSync, openSync, readSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
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

/** Runs a job in a worker thread: from compiled JavaScript, or from TypeScript sources through tsx. */
export function runLayerJobInWorker<T>(job: LayerJob, what: string): Promise<T> {
  const fromSource = import.meta.url.endsWith('.ts')
  const url = new URL(fromSource ? './layer-worker.ts' : './layer-worker.js', import.meta.url)
  return new Promise((resolve, reject) => {
    // From sources, the worker first registers tsx's loader in its own thread, then imports the entry.
    const worker = fromSource
      ? new Worker(
          `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}) })`,
          {
            eval: true,
            workerData: job,
          },
        )
      : new Worker(url, { workerData: job })
    let settled = false
    worker.once('message', (msg: { ok: boolean; result?: T; error?: string }) => {
      settled = true
      if (msg.ok) resolve(msg.result as T)
      else reject(new LayerJobError(`${what} failed: ${msg.error}`))
    })
    worker.once('error', (err) => {
      settled = true
      reject(new LayerJobError(`${what} failed in its worker: ${err.message}`))
    })
    worker.once('exit', (code) => {
      if (!settled) reject(new LayerJobError(`${what}: worker exited with code ${code}`))
    })
  })
}
