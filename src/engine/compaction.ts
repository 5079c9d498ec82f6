/**
 * L0 → L1 compaction: once `compaction_threshold` L0 deltas have piled up, the oldest LSN-contiguous
 * chain of them is merged (in a worker thread) into L1 deltas split by key range, which then replace the
 * chain in one step. Reads keep being served from the L0s until the swap.
 */
import { rmSync } from 'node:fs'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { MergeJob, MergeResult } from './compaction-merge.js'
import { writeFileDurable } from './durable-fs.js'
import type { HistoricLayer } from './layer-map.js'
import { COMPACTION_MANIFEST, type Timeline } from './timeline.js'

export interface CompactionResult {
  inputs: number
  outputs: number
  entries: number
  elapsedMs: number
}

export class CompactionError extends Error {
  override name = 'CompactionError'
}

export async function compactL0(
  tl: Timeline,
  opts: { threshold: number; targetSize: number; force?: boolean },
): Promise<CompactionResult | null> {
  const l0 = tl.layers.l0()
  if (l0.length === 0 || (l0.length < opts.threshold && !opts.force)) return null
  const chain: HistoricLayer[] = [l0[0]]
  for (let i = 1; i < l0.length && l0[i].desc.lsnStart === chain[chain.length - 1].desc.lsnEnd; i++)
    chain.push(l0[i])
  if (chain.length < 2) return null
  const started = Date.now()
  const job: MergeJob = {
    inputs: chain.map((l) => l.path),
    dir: tl.dir,
    tenantId: tl.tenantId,
    timelineId: tl.timelineId,
    targetSize: opts.targetSize,
    lsnStart: chain[0].desc.lsnStart,
    lsnEnd: chain[chain.length - 1].desc.lsnEnd,
  }
  const result = await runMergeInWorker(job)
  // The manifest makes the swap atomic across a crash: with it, the outputs are complete and the inputs
  // go; without it, outputs found beside their inputs are the leftovers of an unfinished merge.
  const manifest = path.join(tl.dir, COMPACTION_MANIFEST)
  writeFileDurable(
    manifest,
    JSON.stringify({
      inputs: chain.map((l) => path.basename(l.path)),
      outputs: result.outputs.map((p) => path.basename(p)),
    }),
  )
  await tl.replaceLayers(chain, result.outputs)
  rmSync(manifest, { force: true })
  return {
    inputs: chain.length,
    outputs: result.outputs.length,
    entries: result.entries,
    elapsedMs: Date.now() - started,
  }
}

/** The worker runs from compiled JavaScript, or from TypeScript sources through tsx (tests, bin/dev.js). */
function runMergeInWorker(job: MergeJob): Promise<MergeResult> {
  const fromSource = import.meta.url.endsWith('.ts')
  const url = new URL(fromSource ? './compaction-worker.ts' : './compaction-worker.js', import.meta.url)
  return new Promise((resolve, reject) => {
    // From sources, the worker first registers tsx's loader in its own thread, then imports the entry.
    const worker = fromSource
      ? new Worker(
          `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}) })`,
          { eval: true, workerData: job },
        )
      : new Worker(url, { workerData: job })
    let settled = false
    worker.once('message', (msg: { ok: boolean; result?: MergeResult; error?: string }) => {
      settled = true
      if (msg.ok) resolve(msg.result!)
      else reject(new CompactionError(`compaction of ${job.inputs.length} L0 layers failed: ${msg.error}`))
    })
    worker.once('error', (err) => {
      settled = true
      reject(new CompactionError(`compaction worker failed: ${err.message}`))
    })
    worker.once('exit', (code) => {
      if (!settled) reject(new CompactionError(`compaction worker exited with code ${code}`))
    })
  })
}
