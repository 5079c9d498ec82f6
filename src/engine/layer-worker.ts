/** Worker-thread entry: runs one layer job (a merge or a flush) and posts its result or error back. */
import { parentPort, workerData } from 'node:worker_threads'
import { type LayerJob, runLayerJob } from './layer-jobs.js'

try {
  parentPort!.postMessage({ ok: true, result: runLayerJob(workerData as LayerJob) })
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).message })
}
