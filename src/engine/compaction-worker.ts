/** Worker-thread entry: runs one merge job and posts its result (or its error message) back. */
import { parentPort, workerData } from 'node:worker_threads'
import { type MergeJob, mergeLayers } from './compaction-merge.js'

try {
  parentPort!.postMessage({ ok: true, result: mergeLayers(workerData as MergeJob) })
} catch (err) {
  parentPort!.postMessage({ ok: false, error: (err as Error).message, name: (err as Error).name })
}
