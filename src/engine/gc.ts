/**
 * Garbage collection of a timeline's layers.
 *
 * The cutoff is min(last_record_lsn − gc_horizon, the LSN current at now − pitr_interval), never above
 * disk_consistent_lsn and never moving back. A layer goes only when no read that is still allowed can
 * need it: reads at or above the cutoff, and reads at the branch points of child timelines. A read at
 * point P needs layer L unless P is past L's LSN range and image layers between L and P cover L's keys.
 */
import type { Lsn } from '../postgres/lsn.js'
import { type HistoricLayer, totalSize } from './layer-map.js'
import type { Timeline } from './timeline.js'

export interface GcOptions {
  gcHorizon: number
  /** Milliseconds; 0 keeps no history for time's sake. */
  pitrInterval: number
  /** Branch points of child timelines. */
  retainLsns: readonly Lsn[]
  now?: number
}

export interface GcResult {
  cutoff: Lsn
  layersTotal: number
  removed: number
  bytesRemoved: number
  neededByCutoff: number
  neededByBranches: number
  elapsedMs: number
}

export function gcCutoff(tl: Timeline, opts: Pick<GcOptions, 'gcHorizon' | 'pitrInterval' | 'now'>): Lsn {
  const last = tl.lastRecordLsn
  const space = Math.max(0, last - opts.gcHorizon)
  let time = last
  if (opts.pitrInterval > 0) {
    // Before the oldest sample nothing is known: keep everything the timeline has.
    time = tl.lsnAtTime((opts.now ?? Date.now()) - opts.pitrInterval) ?? tl.metadata.initLsn
  }
  const cutoff = Math.min(space, time, tl.diskConsistentLsn)
  return Math.max(cutoff, tl.latestGcCutoffLsn)
}

export async function gcTimeline(tl: Timeline, opts: GcOptions): Promise<GcResult> {
  const started = Date.now()
  const cutoff = gcCutoff(tl, opts)
  const layers = tl.layers.layers
  const images = layers.filter((l) => l.isImage)
  let neededByCutoff = 0
  let neededByBranches = 0
  const remove: HistoricLayer[] = []
  for (const l of layers) {
    if (l.desc.lsnEnd > cutoff || !coveredByImages(l, images, cutoff)) {
      neededByCutoff++
      continue
    }
    const branchNeeds = opts.retainLsns.some((p) => p >= l.desc.lsnStart && !coveredByImages(l, images, p))
    if (branchNeeds) {
      neededByBranches++
      continue
    }
    remove.push(l)
  }
  // Publish the cutoff first: from now on no read below it can start, so nothing removed can be wanted.
  tl.setGcCutoff(cutoff)
  await tl.replaceLayers(remove, [])
  return {
    cutoff,
    layersTotal: layers.length,
    removed: remove.length,
    bytesRemoved: totalSize(remove),
    neededByCutoff,
    neededByBranches,
    elapsedMs: Date.now() - started,
  }
}

/**
 * True when a read at `point` cannot need `layer`: the point is past the layer's newest data and image
 * layers taken between the two cover the layer's whole key range.
 */
function coveredByImages(layer: HistoricLayer, images: readonly HistoricLayer[], point: Lsn): boolean {
  const newest = layer.desc.lsnEnd - 1
  if (point < newest) return false
  const usable = images
    .filter((i) => i !== layer && i.desc.lsnStart >= newest && i.desc.lsnStart <= point)
    .filter((i) => !(layer.isImage && i.desc.lsnStart === layer.desc.lsnStart))
    .sort((a, b) => Buffer.compare(a.desc.keyStart, b.desc.keyStart))
  let reach = layer.desc.keyStart
  for (const i of usable) {
    if (Buffer.compare(i.desc.keyStart, reach) > 0) break
    if (Buffer.compare(i.desc.keyEnd, reach) > 0) reach = i.desc.keyEnd
    if (Buffer.compare(reach, layer.desc.keyEnd) >= 0) return true
  }
  return Buffer.compare(reach, layer.desc.keyEnd) >= 0
}
