/**
 * The layer map as an SVG document (pagectl draw-timeline): a rectangle per layer, coloured by kind, with
 * the layer's name, keys, LSNs and size in its `<title>` so a browser shows them on hover; image layers as
 * thin bands at their LSN; the marked LSNs as horizontal lines named on the right; a legend on top.
 */
import { LAYER_KIND_NAMES, type LayerKind, type MarkerKind } from '../control/layers.js'
import { formatSize } from '../lib/units.js'
import {
  type LayerMapGeometry,
  type LayerMapModel,
  layerMapGeometry,
  thinLabels,
} from './layer-map-geometry.js'

const KIND_FILL: Record<LayerKind, string> = {
  l0: '#f0a830',
  l1: '#4a7fd4',
  image: '#2e9e4f',
  open: '#c45ab3',
  frozen: '#e6a6dc',
}
const MARKER_STROKE: Record<MarkerKind, { color: string; dash: string }> = {
  branch: { color: '#138a9c', dash: '' },
  gc_cutoff: { color: '#d7263d', dash: '' },
  disk_consistent: { color: '#444444', dash: '6 3' },
  last_record: { color: '#000000', dash: '2 2' },
}
/** Deltas first, so the thin image bands and the in-memory layers are drawn on top. */
const PAINT_ORDER: readonly LayerKind[] = ['l1', 'l0', 'image', 'frozen', 'open']

const FONT = 11
/** The advance of one character of an 11px monospace font, rounded up. */
const CHAR = 6.7
const KEY_LABEL_SPACING = 19
const LSN_LABEL_SPACING = FONT + 3
const BAND = 4
const PAD = 6
const MARKER_KINDS = ['branch', 'gc_cutoff', 'disk_consistent', 'last_record'] as const
const MARKER_NAMES = MARKER_KINDS.map((k) => k.replace('_', ' '))

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

const num = (n: number) => String(Math.round(n * 10) / 10)

export function renderLayerMapSvg(
  model: LayerMapModel | LayerMapGeometry,
  opts: { title?: string } = {},
): string {
  const g = 'rects' in model ? model : layerMapGeometry(model)
  const nKey = Math.max(g.keys.length, 2)
  const nLsn = Math.max(g.lsns.length, 2)
  const plotW = Math.max(600, Math.min(1400, (nKey - 1) * 24))
  const plotH = Math.max(320, Math.min(2400, (nLsn - 1) * 18))
  const stepX = plotW / (nKey - 1)

  const markerText = new Map<number, { text: string; kind: MarkerKind }>()
  for (const m of g.markers) {
    const prev = markerText.get(m.y)
    markerText.set(m.y, {
      text: prev ? `${prev.text}, ${m.label}` : `${m.label} ${m.lsn}`,
      kind: prev?.kind ?? m.kind,
    })
  }
  const keyShown = thinLabels(
    g.keys.map((_, i) => i * stepX),
    g.keys.map(() => 0),
    KEY_LABEL_SPACING,
  )
  const longestKey = Math.max(3, ...keyShown.map((i) => g.keys[i].label.length))
  const left = 16 + CHAR * Math.max(...g.lsns.map((l) => l.length), 3)
  const right = 24 + CHAR * Math.max(0, ...[...markerText.values()].map((m) => m.text.length + 2))
  const top = 64
  const bottom = 24 + CHAR * longestKey * Math.SQRT1_2 + FONT
  const legendWidth =
    [...Object.values(LAYER_KIND_NAMES), ...MARKER_NAMES].reduce(
      (w, name) => w + 34 + CHAR * name.length,
      0,
    ) + 16
  const width = Math.ceil(Math.max(left + plotW + right, left + legendWidth))
  const height = Math.ceil(top + plotH + bottom)
  const xOf = (i: number) => left + i * stepX
  // Half a band of room below the lowest LSN and above the highest, so bands there are not cut by the axes.
  const yOf = (i: number) => top + PAD + (plotH - 2 * PAD) - i * ((plotH - 2 * PAD) / (nLsn - 1))

  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="${FONT}" role="img">`,
    `<title>${escapeXml(opts.title ?? 'layer map')}</title>`,
    `<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ]
  if (opts.title)
    out.push(
      `<text x="${num(left)}" y="18" font-size="13" font-weight="bold">${escapeXml(opts.title)}</text>`,
    )

  // Legend: a swatch per kind, then the marker lines.
  out.push('<g class="legend">')
  let lx = left
  for (const k of ['l0', 'l1', 'image', 'open', 'frozen'] as const) {
    out.push(
      `<rect class="swatch" x="${num(lx)}" y="30" width="14" height="10" fill="${KIND_FILL[k]}" stroke="#333333" stroke-width="0.5"/>`,
      `<text x="${num(lx + 18)}" y="39">${escapeXml(LAYER_KIND_NAMES[k])}</text>`,
    )
    lx += 18 + CHAR * LAYER_KIND_NAMES[k].length + 16
  }
  MARKER_KINDS.forEach((k, i) => {
    const s = MARKER_STROKE[k]
    const name = MARKER_NAMES[i]
    out.push(
      `<line x1="${num(lx)}" y1="35" x2="${num(lx + 16)}" y2="35" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      `<text x="${num(lx + 20)}" y="39">${escapeXml(name)}</text>`,
    )
    lx += 20 + CHAR * name.length + 16
  })
  out.push('</g>')

  // Axes: LSN labels on the left (thinned bottom-up), key labels below, slanted, thinned left to right.
  out.push(
    `<g class="axes" stroke="#999999" stroke-width="0.5"><line x1="${num(left)}" y1="${num(top)}" x2="${num(left)}" y2="${num(top + plotH)}"/><line x1="${num(left)}" y1="${num(top + plotH)}" x2="${num(left + plotW)}" y2="${num(top + plotH)}"/></g>`,
  )
  out.push('<g class="lsn-labels" text-anchor="end">')
  for (const i of thinLabels(
    g.lsns.map((_, i) => -yOf(i)),
    g.lsns.map(() => 0),
    LSN_LABEL_SPACING,
  ))
    out.push(`<text x="${num(left - 6)}" y="${num(yOf(i) + FONT / 3)}">${escapeXml(g.lsns[i])}</text>`)
  out.push('</g>')
  out.push('<g class="key-labels" text-anchor="end">')
  for (const i of keyShown) {
    const x = xOf(i)
    const y = top + plotH + 10
    out.push(
      `<line x1="${num(x)}" y1="${num(top + plotH)}" x2="${num(x)}" y2="${num(top + plotH + 4)}" stroke="#999999" stroke-width="0.5"/>`,
      `<text x="${num(x)}" y="${num(y)}" transform="rotate(-45 ${num(x)} ${num(y)})">${escapeXml(g.keys[i].label)}</text>`,
    )
  }
  out.push('</g>')

  out.push('<g class="layers" stroke="#222222" stroke-width="0.5">')
  for (const kind of PAINT_ORDER)
    for (const r of g.rects) {
      if (r.kind !== kind) continue
      const x = xOf(r.x0)
      const w = Math.max(1, (r.x1 - r.x0) * stepX)
      const [y, h] = r.y0 === r.y1 ? [yOf(r.y0) - BAND / 2, BAND] : [yOf(r.y1), yOf(r.y0) - yOf(r.y1)]
      const title = `${r.name}\n${LAYER_KIND_NAMES[kind]}, ${formatSize(r.bytes)}\nkeys ${r.keys}\nLSN ${r.lsns}`
      out.push(
        `<rect data-kind="${kind}" x="${num(x)}" y="${num(y)}" width="${num(w)}" height="${num(h)}" fill="${KIND_FILL[kind]}"><title>${escapeXml(title)}</title></rect>`,
      )
    }
  out.push('</g>')

  // A line per marker (several may share an LSN), one label per LSN.
  out.push('<g class="markers">')
  for (const m of g.markers) {
    const s = MARKER_STROKE[m.kind]
    out.push(
      `<line data-marker="${m.kind}" x1="${num(left)}" y1="${num(yOf(m.y))}" x2="${num(left + plotW + 8)}" y2="${num(yOf(m.y))}" stroke="${s.color}" stroke-width="1.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}><title>${escapeXml(`${m.label} ${m.lsn}`)}</title></line>`,
    )
  }
  for (const [i, m] of markerText)
    out.push(
      `<text x="${num(left + plotW + 12)}" y="${num(yOf(i) + FONT / 3)}" fill="${MARKER_STROKE[m.kind].color}">${escapeXml(m.text)}</text>`,
    )
  out.push('</g>')
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
