/**
 * Image layers: for each key-space partition (about compaction_target_size of pages), once enough delta
 * layers are stacked above the partition's newest image, materialise every key of the partition at
 * disk_consistent_lsn into an image layer, so reads stop descending through the deltas and GC can drop
 * what lies below.
 */

import { BLCKSZ } from '../postgres/data-page.js'
import type { Lsn } from '../postgres/lsn.js'
import { KEY_MAX, KEY_MIN, type KeyRange, keyStr } from './key.js'
import { withLocalLayers } from './layer-download.js'
import { LayerFileWriter } from './layer-file.js'
import type { HistoricLayer } from './layer-map.js'
import { Slicer } from './slicer.js'
import { elapsedMs, type Timeline } from './timeline.js'

/** How long image creation may hold the event loop at a time: a page read waits at most this long. */
const SLICE_MS = 0.2

export interface ImageOptions {
  threshold: number
  targetSize: number
  force?: boolean
  /** Keys that still exist, when the caller knows better than the layers (dropped relations). */
  keyFilter?: (key: Buffer) => boolean
}

export interface ImageResult {
  lsn: Lsn
  partitions: number
  created: number
  keys: number
  /** Bytes of the image layers created. */
  bytes: number
  elapsedMs: number
}

/** Contiguous partitions tiling the key space, each holding about `targetSize / 8 KiB` keys. */
export function partitionKeys(keys: readonly Buffer[], targetSize: number): KeyRange[] {
  const per = Math.max(1, Math.floor(targetSize / BLCKSZ))
  const parts: KeyRange[] = []
  for (let i = 0; i < keys.length; i += per) {
    parts.push({ start: i === 0 ? KEY_MIN : keys[i], end: i + per < keys.length ? keys[i + per] : KEY_MAX })
  }
  return parts.length > 0 ? parts : [{ start: KEY_MIN, end: KEY_MAX }]
}

/** How many delta layers overlapping `part` lie above its newest covering image. */
export function deltasAboveImage(layers: readonly HistoricLayer[], part: KeyRange): number {
  const s = keyStr(part.start)
  const e = keyStr(part.end)
  let imageLsn = -1
  for (const l of layers) {
    if (l.isImage && l.keyStartStr <= s && l.keyEndStr >= e) imageLsn = Math.max(imageLsn, l.desc.lsnStart)
  }
  let n = 0
  for (const l of layers) {
    if (l.isImage || l.keyEndStr <= s || l.keyStartStr >= e) continue
    if (l.desc.lsnEnd - 1 > imageLsn) n++
  }
  return n
}

export async function createImageLayers(
  tl: Timeline,
  opts: ImageOptions,
  signal?: AbortSignal,
): Promise<ImageResult> {
  const started = performance.now()
  const lsn = tl.diskConsistentLsn
  const keys = (await withLocalLayers(() => tl.listKeys(lsn, new Slicer(SLICE_MS)))).filter(
    (k) => !opts.keyFilter || opts.keyFilter(k),
  )
  const parts = partitionKeys(keys, opts.targetSize)
  const result: ImageResult = { lsn, partitions: parts.length, created: 0, keys: 0, bytes: 0, elapsedMs: 0 }
  let ki = 0
  for (const part of parts) {
    if (signal?.aborted) break
    const end = keyStr(part.end)
    const partKeys: Buffer[] = []
    while (ki < keys.length && keyStr(keys[ki]) < end) partKeys.push(keys[ki++])
    const stacked = deltasAboveImage(tl.layers.layers, part)
    if (!opts.force && stacked < opts.threshold) continue
    if (stacked === 0) continue
    const w = new LayerFileWriter({
      dir: tl.dir,
      kind: 'image',
      tenantId: tl.tenantId,
      timelineId: tl.timelineId,
      keyStart: part.start,
      keyEnd: part.end,
      lsnStart: lsn,
      lsnEnd: lsn + 1,
    })
    try {
      // Reconstruction runs redo on this thread: let page reads in between.
      const slice = new Slicer(SLICE_MS)
      for (const key of partKeys) {
        const page = await withLocalLayers(() => tl.get(key, lsn))
        if (page) w.add(key, lsn, page, true, true)
        await slice.yield()
      }
      const [layer] = await tl.replaceLayers([], [(await w.finishOffThread()).path])
      result.bytes += layer.fileSize
    } catch (err) {
      w.abort()
      throw err
    }
    result.created++
    result.keys += partKeys.length
  }
  result.elapsedMs = elapsedMs(started)
  return result
}
