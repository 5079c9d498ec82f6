/** `zenith layer dump` for a person: the file's summary as fields, then its entries as a table. */
import type { LayerDump } from '../control/layer-dump.js'
import { formatSize } from '../lib/units.js'
import type { Output } from './output.js'

export function renderLayerDump(out: Output, d: LayerDump): string {
  const s = d.summary
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`
  const index =
    s.index_height === 0
      ? 'no index (no entries)'
      : `${plural(s.index_blocks, 'block')}, ${formatSize(s.index_bytes)}, ${plural(s.index_height, 'level')}`
  const summary = out.fields([
    ['layer', s.name],
    ['file', s.file],
    ['format', `version ${s.format_version}, ${s.kind} layer`],
    ['tenant', s.tenant_id],
    ['timeline', s.timeline_id],
    ['key range', `${s.key_start}-${s.key_end}`],
    ['', s.key_range],
    [
      'lsn range',
      s.kind === 'image' ? `${s.lsn_start} (image)` : `${s.lsn_start} - ${s.lsn_end} (end exclusive)`,
    ],
    [
      'entries',
      `${s.entries} (${plural(s.keys, 'distinct key')}): ${s.images} images, ${s.records} records, ${s.will_init} will_init`,
    ],
    [
      'values',
      `${formatSize(s.value_bytes)}, ${formatSize(s.stored_value_bytes)} stored, compression ${s.compression}`,
    ],
    [
      'blocks',
      `${s.blocks} of ${formatSize(s.block_size)}: header, ${s.data_blocks} data, ${s.index_blocks} index`,
    ],
    ['index', index],
    ['file size', `${formatSize(s.file_size)} (${s.file_size} bytes)`],
  ])
  const rows = d.entries.map((e) => [
    e.key,
    e.lsn,
    e.kind,
    e.will_init ? 'yes' : 'no',
    String(e.size),
    e.description,
  ])
  const parts = [summary, '']
  if (s.matching_entries === 0) parts.push(out.dim('no entries match'))
  else parts.push(out.table(['KEY', 'LSN', 'KIND', 'WILL INIT', 'SIZE', 'VALUE'], rows))
  if (s.omitted_entries > 0) {
    parts.push(out.dim(`… ${s.omitted_entries} more of ${s.matching_entries} entries (--limit)`))
  }
  return parts.join('\n')
}
