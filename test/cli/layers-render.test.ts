/** The STORAGE column of `timeline layers`: where each layer file is, on disk, in remote storage or both. */
import { describe, expect, it } from 'vitest'
import { renderBranchLayers } from '../../src/cli/layers-render.js'
import { Output } from '../../src/cli/output.js'
import { layerTotals } from '../../src/control/layers.js'
import type { HistoricLayerInfo, LayerMapInfo } from '../../src/pageserver/api-types.js'

const pipe = { isTTY: false, write: () => true } as unknown as NodeJS.WritableStream
const KEY_MIN = '0'.repeat(36)
const KEY_MAX = 'F'.repeat(36)

const delta = (start: string, end: string, where: Partial<HistoricLayerInfo>): HistoricLayerInfo => ({
  kind: 'Delta',
  layer_file_name: `${KEY_MIN}-${KEY_MAX}__${start}-${end}`,
  layer_file_size: 8192,
  key_start: KEY_MIN,
  key_end: KEY_MAX,
  lsn_start: `0/${start}`,
  lsn_end: `0/${end}`,
  l0: true,
  remote: false,
  ...where,
})

describe('timeline layers', () => {
  it('says local, local+remote, remote and memory', () => {
    const info: LayerMapInfo = {
      in_memory_layers: [{ kind: 'Open', lsn_start: '0/4000', bytes: 100 }],
      historic_layers: [
        delta('3000', '4000', { remote: false, local: true }),
        delta('2000', '3000', { remote: true, local: true }),
        delta('1000', '2000', { remote: true, local: false }),
      ],
    }
    const text = renderBranchLayers(new Output(pipe, {}), {
      ...info,
      tenant_id: 'a'.repeat(32),
      timeline_id: 'b'.repeat(32),
      branch: 'main',
      totals: layerTotals(info),
    })
    const lines = text.split('\n')
    const head = lines.findIndex((l) => /^KIND\s.*STORAGE$/.test(l))
    const rows = lines.slice(head + 1, lines.indexOf('', head))
    const storage = rows.map((l) => l.trim().split(/\s+/).at(-1))
    expect(storage).toEqual(['memory', 'local', 'local+remote', 'remote'])
  })
})
