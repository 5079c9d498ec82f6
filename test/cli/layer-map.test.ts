/** The layer map picture: its geometry, the terminal drawing and the SVG, from a layer map built here. */
import { stripVTControlCharacters } from 'node:util'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { type LayerMapModel, layerMapGeometry } from '../../src/cli/layer-map-geometry.js'
import { renderLayerMapSvg } from '../../src/cli/layer-map-svg.js'
import { drawLayerMapText, LayerMapSizeError } from '../../src/cli/layer-map-text.js'
import { visibleWidth } from '../../src/cli/output.js'
import { diffLayers, type LayerKind, layerKind, timelineMarkers } from '../../src/control/layers.js'
import { KEY_MAX, KEY_MIN, keyToHex } from '../../src/engine/key.js'
import type { HistoricLayerInfo, InMemoryLayerInfo, TimelineInfo } from '../../src/pageserver/api-types.js'
import { relBlockKey } from '../../src/pgdata/datadir-mapping.js'
import { formatLsn } from '../../src/postgres/lsn.js'

const REL = { spcNode: 1663, dbNode: 5, relNode: 16384, forkNum: 0 }
const K = {
  min: keyToHex(KEY_MIN),
  a: keyToHex(relBlockKey(REL, 0)),
  b: keyToHex(relBlockKey(REL, 100)),
  c: keyToHex(relBlockKey({ ...REL, relNode: 16390 }, 0)),
  max: keyToHex(KEY_MAX),
}
const L = (n: number) => formatLsn(0x1500000 + n * 0x1000)
const fileName = (k0: string, k1: string, l0: string, l1?: string) =>
  `${k0}-${k1}__${l0.replace('/', '')}${l1 ? `-${l1.replace('/', '')}` : ''}`

function delta(k0: string, k1: string, a: number, b: number, l0: boolean): HistoricLayerInfo {
  return {
    kind: 'Delta',
    layer_file_name: fileName(k0, k1, L(a), L(b)),
    layer_file_size: 8192 * (b - a),
    key_start: k0,
    key_end: k1,
    lsn_start: L(a),
    lsn_end: L(b),
    l0,
    remote: false,
  }
}
function image(k0: string, k1: string, a: number): HistoricLayerInfo {
  return {
    kind: 'Image',
    layer_file_name: fileName(k0, k1, L(a)),
    layer_file_size: 65536,
    key_start: k0,
    key_end: k1,
    lsn_start: L(a),
    remote: false,
  }
}

const HISTORIC: HistoricLayerInfo[] = [
  image(K.min, K.a, 1),
  image(K.a, K.max, 1),
  delta(K.min, K.b, 1, 4, false),
  delta(K.b, K.max, 1, 4, false),
  image(K.a, K.b, 4),
  delta(K.min, K.max, 4, 6, true),
  delta(K.min, K.max, 6, 7, true),
]
const IN_MEMORY: InMemoryLayerInfo[] = [
  { kind: 'Frozen', lsn_start: L(7), lsn_end: L(8), bytes: 4096 },
  { kind: 'Open', lsn_start: L(8), bytes: 1024 },
]

function timeline(over: Partial<TimelineInfo>): TimelineInfo {
  return {
    latest_gc_cutoff_lsn: '0/0',
    disk_consistent_lsn: L(7),
    last_record_lsn: L(9),
    ...over,
  } as TimelineInfo
}

const MODEL: LayerMapModel = {
  historic_layers: HISTORIC,
  in_memory_layers: IN_MEMORY,
  markers: timelineMarkers(timeline({ latest_gc_cutoff_lsn: L(2) }), [{ branch: 'dev', ancestor_lsn: L(5) }]),
  last_record_lsn: L(9),
}

const ALL_KINDS: LayerKind[] = ['l0', 'l1', 'image', 'open', 'frozen']

describe('layer map geometry', () => {
  const g = layerMapGeometry(MODEL)

  it('compresses each axis to one step per distinct bound', () => {
    // Keys: min, a, b, max (c occurs nowhere). LSNs: 1, 2 (gc), 4, 5 (branch), 6, 7, 8, 9.
    expect(g.keys.map((k) => k.hex)).toEqual([K.min, K.a, K.b, K.max])
    expect(g.lsns).toEqual([1, 2, 4, 5, 6, 7, 8, 9].map(L))
    expect(g.keys.map((k) => k.label)).toEqual([
      'min',
      'rel 1663/5/16384 blk 0',
      'rel 1663/5/16384 blk 100',
      'max',
    ])
  })

  it('has one rectangle per layer, at its bounds; an image at its one LSN', () => {
    expect(g.rects).toHaveLength(HISTORIC.length + IN_MEMORY.length)
    expect(new Set(g.rects.map((r) => r.name)).size).toBe(g.rects.length)
    const byName = new Map(g.rects.map((r) => [r.name, r]))
    const img = byName.get(fileName(K.a, K.b, L(4)))!
    expect(img).toMatchObject({
      kind: 'image',
      x0: 1,
      x1: 2,
      y0: 2,
      y1: 2,
      lsns: L(4),
      keys: 'rel 1663/5/16384 blk 0-99',
    })
    const l1 = byName.get(fileName(K.b, K.max, L(1), L(4)))!
    expect(l1).toMatchObject({ kind: 'l1', x0: 2, x1: 3, y0: 0, y1: 2 })
    expect(byName.get(fileName(K.min, K.max, L(4), L(6)))).toMatchObject({
      kind: 'l0',
      keys: 'all keys',
      y0: 2,
      y1: 4,
    })
    // In-memory layers hold every key; the open one reaches last_record_lsn.
    expect(byName.get(`open@${L(8)}`)).toMatchObject({ kind: 'open', x0: 0, x1: 3, y0: 6, y1: 7 })
    expect(byName.get(`frozen@${L(7)}-${L(8)}`)).toMatchObject({ kind: 'frozen', y0: 5, y1: 6 })
    for (const k of ALL_KINDS) expect(g.rects.some((r) => r.kind === k)).toBe(true)
  })

  it('puts each marker at its LSN and leaves out a GC cutoff of 0/0', () => {
    expect(g.markers.map((m) => [m.kind, g.lsns[m.y], m.lsn])).toEqual([
      ['branch', L(5), L(5)],
      ['gc_cutoff', L(2), L(2)],
      ['disk_consistent', L(7), L(7)],
      ['last_record', L(9), L(9)],
    ])
    const none = timelineMarkers(timeline({}), [])
    expect(none.map((m) => m.kind)).toEqual(['disk_consistent', 'last_record'])
  })
})

describe('layer map in the terminal', () => {
  const g = layerMapGeometry(MODEL)

  it('keeps to the width and height asked for, and shows every kind by its fill without colour', () => {
    for (const [width, height] of [
      [100, 24],
      [60, 12],
      [40, 6],
      [160, 48],
    ]) {
      const lines = drawLayerMapText(g, { width, height, color: false })
      expect(lines).toHaveLength(height)
      for (const l of lines) expect(visibleWidth(l)).toBeLessThanOrEqual(width)
      expect(lines.join('\n')).not.toContain('\x1b[')
      const plot = lines.slice(1, -2).join('\n')
      // With room enough, every kind's fill is in the plot itself, not only in the legend.
      if (height >= 24) for (const fill of ['▓', '▒', '█', '░']) expect(plot).toContain(fill)
    }
  })

  it('draws each marker as a line named at the right, at the row of its LSN label', () => {
    const lines = drawLayerMapText(g, { width: 100, height: 30, color: false })
    for (const [name, lsn] of [
      ['gc cutoff', L(2)],
      ['branch dev', L(5)],
      ['disk consistent', L(7)],
      ['last record', L(9)],
    ]) {
      const row = lines.find((l) => l.includes(`◂ ${name}`))
      expect(row, name).toBeDefined()
      expect(row!.trimStart().startsWith(lsn)).toBe(true)
      expect(row).toContain('─')
    }
    expect(lines.at(-1)).toContain('rel 1663/5/16384 blk 0')
  })

  it('colours by kind when asked, with the same text underneath', () => {
    const plain = drawLayerMapText(g, { width: 90, height: 20, color: false })
    const coloured = drawLayerMapText(g, { width: 90, height: 20, color: true })
    expect(coloured.join('\n')).toContain('\x1b[')
    expect(coloured.map((l) => stripVTControlCharacters(l))).toEqual(plain)
  })

  it('refuses a size it cannot draw in', () => {
    expect(() => drawLayerMapText(g, { width: 0, height: 20, color: false })).toThrow(LayerMapSizeError)
    expect(() => drawLayerMapText(g, { width: 39, height: 20, color: false })).toThrow(/at least 40/)
    expect(() => drawLayerMapText(g, { width: 80, height: 5, color: false })).toThrow(/at least 6/)
  })

  it('draws an empty layer map', () => {
    const lines = drawLayerMapText(
      { historic_layers: [], in_memory_layers: [], markers: [] },
      { width: 50, height: 8, color: false },
    )
    expect(lines).toHaveLength(8)
  })
})

describe('layer map as SVG', () => {
  const svg = renderLayerMapSvg(MODEL, { title: 'layer map of branch <main> & co' })

  it('is valid XML with a rectangle per layer, by kind, each with its name as a title', () => {
    expect(XMLValidator.validate(svg)).toBe(true)
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(svg)
    const groups = ([] as { class: string; rect?: unknown }[]).concat(doc.svg.g)
    const layers = groups.find((x) => x.class === 'layers')!
    const rects = ([] as { 'data-kind': LayerKind; title: string }[]).concat(layers.rect as never)
    expect(rects).toHaveLength(HISTORIC.length + IN_MEMORY.length)
    const count = (k: LayerKind) => rects.filter((r) => r['data-kind'] === k).length
    const want = (k: LayerKind) => [...HISTORIC, ...IN_MEMORY].filter((l) => layerKind(l) === k).length
    for (const k of ALL_KINDS) expect(count(k), k).toBe(want(k))
    for (const l of HISTORIC) expect(rects.some((r) => r.title.startsWith(l.layer_file_name))).toBe(true)
    // The legend has a swatch per kind, outside the layers' group.
    const legend = groups.find((x) => x.class === 'legend')!
    expect(([] as unknown[]).concat(legend.rect)).toHaveLength(ALL_KINDS.length)
  })

  it('draws a line per marker and escapes text', () => {
    for (const k of ['branch', 'gc_cutoff', 'disk_consistent', 'last_record'])
      expect(svg).toContain(`data-marker="${k}"`)
    expect(svg).toContain('&lt;main&gt; &amp; co')
  })

  it('draws image layers as thin bands and deltas as boxes', () => {
    const heights = (kind: string) =>
      [...svg.matchAll(new RegExp(`data-kind="${kind}"[^>]* height="([\\d.]+)"`, 'g'))].map((m) =>
        Number(m[1]),
      )
    expect(heights('image').every((h) => h === 4)).toBe(true)
    expect(heights('l1').every((h) => h > 4)).toBe(true)
  })
})

describe('layer diff', () => {
  it('names the layers added and removed, newest first', () => {
    const before = { historic_layers: HISTORIC.slice(0, 5), in_memory_layers: IN_MEMORY }
    const after = { historic_layers: HISTORIC.slice(2), in_memory_layers: [] }
    const d = diffLayers(before, after)
    expect(d.added.map((c) => [c.kind, c.name])).toEqual([
      ['l0', HISTORIC[6].layer_file_name],
      ['l0', HISTORIC[5].layer_file_name],
    ])
    expect(d.removed.map((c) => c.kind)).toEqual(['open', 'frozen', 'image', 'image'])
    expect(d.removed[0]).toEqual({ name: `open@${L(8)}`, kind: 'open', bytes: 1024 })
  })
})
