/**
 * L0 → L1 compaction: once `compaction_threshold` L0 deltas have piled up, the oldest LSN-contiguous
 * chain of them is merged (in a worker thread) into L1 deltas split by key range, which then replace the
 * chain in one step. Reads keep being served from the L0s until the swap.
 */
import { rmSync } from 'node:fs'
import path from 'node:path'
import { writeFileDurable } from '../lib/durable-fs.js'
import type { Lsn } from '../postgres/lsn.js'
import type { MergeJob, MergeResult } from './compaction-merge.js'
import { runLayerJobInWorker } from './layer-jobs.js'
import { type HistoricLayer, totalSize } from './layer-map.js'
import { COMPACTION_MANIFEST, type Timeline } from './timeline.js'

export interface CompactionResult {
  inputs: number
  outputs: number
  entries: number
  /** The merged chain's LSN range, end exclusive. */
  lsnStart: Lsn
  lsnEnd: Lsn
  bytesIn: number
  bytesOut: number
  elapsedMs: number
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
  // The worker reads the inputs by path: remote-only ones are fetched first.
  await Promise.all(chain.map((l) => l.download()))
  const job: MergeJob = {
    inputs: chain.map((l) => l.path),
    dir: tl.dir,
    tenantId: tl.tenantId,
    timelineId: tl.timelineId,
    targetSize: opts.targetSize,
    lsnStart: chain[0].desc.lsnStart,
    lsnEnd: chain[chain.length - 1].desc.lsnEnd,
  }
  const result = await runLayerJobInWorker<MergeResult>(
    { kind: 'merge', ...job },
    `compaction of ${chain.length} L0 layers`,
  )
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
  const added = await tl.replaceLayers(chain, result.outputs)
  rmSync(manifest, { force: true })
  return {
    inputs: chain.length,
    outputs: result.outputs.length,
    entries: result.entries,
    lsnStart: job.lsnStart,
    lsnEnd: job.lsnEnd,
    bytesIn: totalSize(chain),
    bytesOut: totalSize(added),
    elapsedMs: Date.now() - started,
  }
}
