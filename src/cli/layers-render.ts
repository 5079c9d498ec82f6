/** Renderings of a branch's layers: the layer table with totals per kind, and what an operation changed. */
import {
  type BranchLayers,
  fileBytes,
  fileCount,
  isHistoric,
  LAYER_KIND_NAMES,
  LAYER_KINDS,
  type LayerChange,
  type LayerOperationReport,
  type LayerTotals,
  layerBytes,
  layerKeyRange,
  layerKind,
  newestFirst,
} from '../control/layers.js'
import { formatSize } from '../lib/units.js'
import type { HistoricLayerInfo } from '../pageserver/api-types.js'
import type { Output } from './output.js'

function renderTotals(out: Output, t: LayerTotals): string {
  const kinds = LAYER_KINDS.filter((k) => t[k].count > 0)
  if (kinds.length === 0) return 'no layers'
  return out.table(
    ['KIND', 'LAYERS', 'SIZE'],
    [
      ...kinds.map((k) => [LAYER_KIND_NAMES[k], String(t[k].count), formatSize(t[k].bytes)]),
      [out.dim('files'), out.dim(String(fileCount(t))), out.dim(formatSize(fileBytes(t)))],
    ],
  )
}

/** Where a layer file is: on local disk, in remote storage, or both. */
const layerStorage = (l: HistoricLayerInfo): string =>
  l.local === false ? 'remote' : l.remote ? 'local+remote' : 'local'

/** Every layer newest first: kind, keys in words, LSN range, size, where it is; then totals per kind. */
export function renderBranchLayers(out: Output, m: BranchLayers): string {
  const layers = newestFirst([...m.in_memory_layers, ...m.historic_layers])
  const rows = layers.map((l) => {
    const kind = layerKind(l)
    return [
      LAYER_KIND_NAMES[kind],
      layerKeyRange(l),
      kind === 'image' ? l.lsn_start : `${l.lsn_start}-${l.lsn_end ?? ''}`,
      formatSize(layerBytes(l)),
      isHistoric(l) ? layerStorage(l) : out.dim('memory'),
    ]
  })
  const head = `branch ${out.bold(m.branch)}  timeline ${m.timeline_id}`
  if (rows.length === 0) return `${head}\nno layers`
  return [
    head,
    '',
    out.table(['KIND', 'KEYS', 'LSNS', 'SIZE', 'STORAGE'], rows),
    '',
    renderTotals(out, m.totals),
  ].join('\n')
}

const CHANGES_SHOWN = 12

/** What a checkpoint, compaction or GC changed: layers added and removed, sizes before and after. */
export function renderLayerOperation(out: Output, r: LayerOperationReport): string {
  const [b, a] = [r.before.totals, r.after.totals]
  const memBytes = (t: LayerTotals) => t.open.bytes + t.frozen.bytes
  // Compaction changes hundreds of layers: the first of each side are shown, --json has them all.
  const some = (list: readonly LayerChange[], what: string) => {
    const rows = list
      .slice(0, CHANGES_SHOWN)
      .map((c) => [what, LAYER_KIND_NAMES[c.kind], c.name, formatSize(c.bytes)])
    if (list.length > CHANGES_SHOWN)
      rows.push([what, out.dim(`… ${list.length - CHANGES_SHOWN} more (--json lists every one)`), '', ''])
    return rows
  }
  const changes = [...some(r.added, out.good('+ added')), ...some(r.removed, out.warn('- removed'))]
  const lines = [
    `${r.added.length} layers added, ${r.removed.length} removed`,
    ...(changes.length > 0 ? [out.table(['CHANGE', 'KIND', 'LAYER', 'SIZE'], changes)] : []),
    '',
    `layer files: ${fileCount(b)} → ${fileCount(a)}, ${formatSize(fileBytes(b))} → ${formatSize(fileBytes(a))}; in memory: ${formatSize(memBytes(b))} → ${formatSize(memBytes(a))}`,
    ...LAYER_KINDS.filter((k) => b[k].count > 0 || a[k].count > 0).map(
      (k) => `  ${LAYER_KIND_NAMES[k]}: ${b[k].count} → ${a[k].count}`,
    ),
  ]
  const res = r.result
  if ('disk_consistent_lsn' in res) lines.push(`disk_consistent_lsn ${res.disk_consistent_lsn}`)
  else if ('cutoff' in res)
    lines.push(
      `gc cutoff ${res.cutoff}: ${res.layers_removed} of ${res.layers_total} layers removed, ${res.layers_needed_by_cutoff} needed by the cutoff, ${res.layers_needed_by_branches} by branches (${res.elapsed} ms)`,
    )
  else {
    const c = res.compaction
    lines.push(
      c
        ? `compaction: ${c.inputs} L0 layers into ${c.outputs} L1 layers, ${c.entries} entries (${c.elapsed} ms)`
        : 'compaction: not enough L0 layers (pass --force to compact what there is)',
      `image layers at ${res.image_layers.lsn}: ${res.image_layers.created} created over ${res.image_layers.partitions} partitions, ${res.image_layers.keys} keys`,
    )
  }
  return lines.join('\n')
}
