/**
 * A branch's layers as the pageserver's layer map shows them, and the operations that change them
 * (checkpoint, compaction, GC) with what each changed: the layer map is read before and after, and the
 * difference is the answer, so it is true whatever the operation's own counters say.
 */

import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { KEY_MAX, KEY_MIN, keyFromHex } from '../engine/key.js'
import { writeFileDurable } from '../lib/durable-fs.js'
import { ZenithError } from '../lib/errors.js'
import type {
  CompactResult,
  GcResult,
  HistoricLayerInfo,
  InMemoryLayerInfo,
  LayerMapInfo,
  TimelineInfo,
} from '../pageserver/api-types.js'
import { describeKeyRange } from '../pgdata/key-describe.js'
import { parseLsn } from '../postgres/lsn.js'
import { branchOfTimeline, loadClusterConfig, tenantOf, timelineOfBranch } from './repo-config.js'
import type { Step } from './steps.js'
import { tenantPageserverClient } from './tenant-placement.js'

/** How a layer is drawn and counted: in-memory open or frozen, an L0 or L1 delta file, an image file. */
export type LayerKind = 'open' | 'frozen' | 'l0' | 'l1' | 'image'
export const LAYER_KINDS: readonly LayerKind[] = ['open', 'frozen', 'l0', 'l1', 'image']
export const LAYER_KIND_NAMES: Record<LayerKind, string> = {
  open: 'in-memory open',
  frozen: 'in-memory frozen',
  l0: 'L0 delta',
  l1: 'L1 delta',
  image: 'image',
}

export type AnyLayer = InMemoryLayerInfo | HistoricLayerInfo

export function layerKind(l: AnyLayer): LayerKind {
  switch (l.kind) {
    case 'Open':
      return 'open'
    case 'Frozen':
      return 'frozen'
    case 'Image':
      return 'image'
    case 'Delta':
      return l.l0 ? 'l0' : 'l1'
  }
}

export const isHistoric = (l: AnyLayer): l is HistoricLayerInfo => 'layer_file_name' in l

/** A file's name; an in-memory layer has none, so it is named by its kind and LSNs (`open@0/16B3748`). */
export function layerName(l: AnyLayer): string {
  if (isHistoric(l)) return l.layer_file_name
  return `${l.kind.toLowerCase()}@${l.lsn_start}${l.lsn_end ? `-${l.lsn_end}` : ''}`
}

/**
 * The keys a layer holds in words: in-memory layers and L0 deltas hold every key (`all keys`); a range in
 * one relation as describeKeyRange gives it, anything wider by its bounds.
 */
export function layerKeyRange(l: AnyLayer): string {
  if (!isHistoric(l)) return 'all keys'
  const [start, end] = [keyFromHex(l.key_start), keyFromHex(l.key_end)]
  if (start.equals(KEY_MIN) && end.equals(KEY_MAX)) return 'all keys'
  return describeKeyRange({ start, end })
}

export const layerBytes = (l: AnyLayer): number => (isHistoric(l) ? l.layer_file_size : l.bytes)

/** Newest first: by LSN end, then by LSN start. */
export function newestFirst(layers: readonly AnyLayer[]): AnyLayer[] {
  // An image has one LSN and no end; an open layer has no end yet and is the newest.
  const end = (l: AnyLayer) =>
    l.lsn_end !== undefined
      ? parseLsn(l.lsn_end)
      : l.kind === 'Open'
        ? Number.POSITIVE_INFINITY
        : parseLsn(l.lsn_start)
  return [...layers].sort(
    (a, b) =>
      end(b) - end(a) ||
      parseLsn(b.lsn_start) - parseLsn(a.lsn_start) ||
      layerName(a).localeCompare(layerName(b)),
  )
}

export interface KindTotal {
  count: number
  bytes: number
}

export type LayerTotals = Record<LayerKind, KindTotal>

export function layerTotals(m: LayerMapInfo): LayerTotals {
  const t = Object.fromEntries(LAYER_KINDS.map((k) => [k, { count: 0, bytes: 0 }])) as LayerTotals
  for (const l of [...m.in_memory_layers, ...m.historic_layers]) {
    t[layerKind(l)].count++
    t[layerKind(l)].bytes += layerBytes(l)
  }
  return t
}

/** The pageserver's layer map as its API gives it, with the branch it belongs to and totals per kind. */
export interface BranchLayers extends LayerMapInfo {
  tenant_id: string
  timeline_id: string
  branch: string
  totals: LayerTotals
}

interface BranchRef {
  tenantId: string
  timelineId: string
  branch: string
}

function resolveBranch(repoDir: string, branch: string, tenantFlag?: string): BranchRef {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, tenantFlag)
  return { tenantId, timelineId: timelineOfBranch(c, tenantId, branch), branch }
}

async function readLayers(repoDir: string, ref: BranchRef): Promise<BranchLayers> {
  const m = await tenantPageserverClient(repoDir, ref.tenantId).layers(ref.tenantId, ref.timelineId)
  return {
    tenant_id: ref.tenantId,
    timeline_id: ref.timelineId,
    branch: ref.branch,
    ...m,
    totals: layerTotals(m),
  }
}

export function branchLayers(
  repoDir: string,
  branch: string,
  opts: { tenantId?: string } = {},
): Promise<BranchLayers> {
  return readLayers(repoDir, resolveBranch(repoDir, branch, opts.tenantId))
}

/** An LSN drawn across the layer map: where a child branches off, GC's cutoff, what is on disk, ingested. */
export type MarkerKind = 'branch' | 'gc_cutoff' | 'disk_consistent' | 'last_record'

export interface LayerMapMarker {
  kind: MarkerKind
  lsn: string
  label: string
}

/**
 * The markers of a timeline: branch points of its children, then its GC cutoff (none before the first
 * GC: 0/0 is no cutoff), disk_consistent_lsn and last_record_lsn.
 */
export function timelineMarkers(
  tl: TimelineInfo,
  children: readonly { branch: string | null; ancestor_lsn: string | null }[],
): LayerMapMarker[] {
  const markers: LayerMapMarker[] = children.flatMap((c) =>
    c.ancestor_lsn
      ? [{ kind: 'branch' as const, lsn: c.ancestor_lsn, label: `branch ${c.branch ?? '?'}` }]
      : [],
  )
  if (parseLsn(tl.latest_gc_cutoff_lsn) > 0)
    markers.push({ kind: 'gc_cutoff', lsn: tl.latest_gc_cutoff_lsn, label: 'gc cutoff' })
  markers.push({ kind: 'disk_consistent', lsn: tl.disk_consistent_lsn, label: 'disk consistent' })
  markers.push({ kind: 'last_record', lsn: tl.last_record_lsn, label: 'last record' })
  return markers
}

/** What `layer map` draws: the layers and the LSNs marked across them. */
export interface LayerMapView extends BranchLayers {
  markers: LayerMapMarker[]
  last_record_lsn: string
}

export async function layerMapView(
  repoDir: string,
  branch: string,
  opts: { tenantId?: string } = {},
): Promise<LayerMapView> {
  const ref = resolveBranch(repoDir, branch, opts.tenantId)
  const c = loadClusterConfig(repoDir)
  const [layers, timelines] = await Promise.all([
    readLayers(repoDir, ref),
    tenantPageserverClient(repoDir, ref.tenantId).timelines(ref.tenantId),
  ])
  const tl = timelines.find((t) => t.timeline_id === ref.timelineId)
  // The layer map was just read, so only a delete in between leaves the timeline out.
  if (!tl)
    throw new ZenithError(`timeline ${ref.timelineId} of branch ${branch} was deleted while being read`, {
      kind: 'not_found',
    })
  const children = timelines
    .filter((t) => t.ancestor_timeline_id === ref.timelineId)
    .map((t) => ({ branch: branchOfTimeline(c, ref.tenantId, t.timeline_id), ancestor_lsn: t.ancestor_lsn }))
  return { ...layers, markers: timelineMarkers(tl, children), last_record_lsn: tl.last_record_lsn }
}

export type LayerOperation = 'checkpoint' | 'compact' | 'gc'

export interface LayerChange {
  name: string
  kind: LayerKind
  bytes: number
}

export interface LayerOperationReport {
  operation: LayerOperation
  before: BranchLayers
  after: BranchLayers
  added: LayerChange[]
  removed: LayerChange[]
  result: { disk_consistent_lsn: string } | CompactResult | GcResult
}

const changeOf = (l: AnyLayer): LayerChange => ({
  name: layerName(l),
  kind: layerKind(l),
  bytes: layerBytes(l),
})

/** Layers of `after` not in `before` and the other way round, by name, newest first. */
export function diffLayers(
  before: LayerMapInfo,
  after: LayerMapInfo,
): { added: LayerChange[]; removed: LayerChange[] } {
  const all = (m: LayerMapInfo) => [...m.in_memory_layers, ...m.historic_layers]
  const names = (m: LayerMapInfo) => new Set(all(m).map(layerName))
  const [b, a] = [names(before), names(after)]
  return {
    added: newestFirst(all(after).filter((l) => !b.has(layerName(l)))).map(changeOf),
    removed: newestFirst(all(before).filter((l) => !a.has(layerName(l)))).map(changeOf),
  }
}

export const fileBytes = (t: LayerTotals) => t.l0.bytes + t.l1.bytes + t.image.bytes
export const fileCount = (t: LayerTotals) => t.l0.count + t.l1.count + t.image.count

const summary = (m: BranchLayers) =>
  `${fileCount(m.totals)} layer files, ${m.in_memory_layers.length} in memory`

/**
 * The operation as steps (read the layer map, run it, read again) and, once they have run, the report.
 * checkpoint flushes the in-memory layers to L0 files without compacting; compact merges L0 into L1 and
 * creates image layers (`force`: whatever the thresholds say); gc removes what the cutoff no longer needs
 * (`gcHorizon` bytes instead of the tenant's gc_horizon).
 */
export function layerOperationSteps(
  repoDir: string,
  branch: string,
  operation: LayerOperation,
  opts: { tenantId?: string; force?: boolean; gcHorizon?: number } = {},
): { steps: Step[]; report: () => LayerOperationReport } {
  const ref = resolveBranch(repoDir, branch, opts.tenantId)
  const ps = tenantPageserverClient(repoDir, ref.tenantId)
  let before: BranchLayers | undefined
  let after: BranchLayers | undefined
  let result: LayerOperationReport['result'] | undefined
  const run: Record<LayerOperation, () => Promise<string>> = {
    checkpoint: async () => {
      const r = await ps.checkpoint(ref.tenantId, ref.timelineId)
      result = r
      return `checkpoint: disk_consistent_lsn ${r.disk_consistent_lsn}`
    },
    compact: async () => {
      const r = await ps.compact(ref.tenantId, ref.timelineId, { force: opts.force })
      result = r
      const c = r.compaction
      return `compaction: ${c ? `${c.inputs} L0 into ${c.outputs} L1` : 'no L0 compaction'}, ${r.image_layers.created} image layers at ${r.image_layers.lsn}`
    },
    gc: async () => {
      const r = await ps.gc(ref.tenantId, ref.timelineId, { gcHorizon: opts.gcHorizon })
      result = r
      return `gc: cutoff ${r.cutoff}, ${r.layers_removed} of ${r.layers_total} layers removed`
    },
  }
  const steps: Step[] = [
    {
      title: `reading the layer map of ${branch}`,
      run: async () => {
        before = await readLayers(repoDir, ref)
        return `layer map of ${branch}: ${summary(before)}`
      },
    },
    { title: `${operation} on ${branch}`, run: run[operation] },
    {
      title: `reading the layer map of ${branch} again`,
      run: async () => {
        after = await readLayers(repoDir, ref)
        return `layer map of ${branch} after ${operation}: ${summary(after)}`
      },
    },
  ]
  const report = (): LayerOperationReport => {
    if (!before || !after || !result) throw new Error(`the ${operation} steps have not all run`)
    return { operation, before, after, ...diffLayers(before, after), result }
  }
  return { steps, report }
}

/** Writes a drawing of the layer map where the user asked (temp file, fsync, rename); its absolute path. */
export function writeLayerMapFile(file: string, text: string): string {
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ZenithError(`cannot write ${abs}: directory ${dir} does not exist`, {
      kind: 'user_input',
      hint: 'name a file in an existing directory',
    })
  if (existsSync(abs) && statSync(abs).isDirectory())
    throw new ZenithError(`cannot write ${abs}: it is a directory`, {
      kind: 'user_input',
      hint: 'name a file, e.g. layer-map.svg',
    })
  writeFileDurable(abs, text)
  return abs
}
