/**
 * The layer map in a terminal: LSN labels on the left, one block of fill characters per layer, the marked
 * LSNs as lines with their names on the right, key labels below. Each kind has its own fill (▓ L0, ▒ L1,
 * █ image, ░ in-memory), so the picture reads without colour too; with colour each kind has its own hue.
 * Takes plain data, so the dashboard draws its small layer map with the same code as `zenith layer map`.
 */
import { Chalk, type ChalkInstance } from 'chalk'
import type { LayerKind, MarkerKind } from '../control/layers.js'
import { ZenithError } from '../lib/errors.js'
import {
  type LayerMapGeometry,
  type LayerMapModel,
  layerMapGeometry,
  thinLabels,
} from './layer-map-geometry.js'
import { visibleWidth } from './output.js'

export const MIN_TEXT_WIDTH = 40
export const MIN_TEXT_HEIGHT = 6

export class LayerMapSizeError extends ZenithError {
  static override kind = 'user_input' as const
  override name = 'LayerMapSizeError'
}

const FILL: Record<LayerKind, string> = { l0: '▓', l1: '▒', image: '█', open: '░', frozen: '░' }
/** Later kinds are painted over earlier ones: thin image bands stay visible on top of deltas. */
const PAINT_ORDER: readonly LayerKind[] = ['l1', 'l0', 'frozen', 'open', 'image']

const kindColor = (c: ChalkInstance): Record<LayerKind, (s: string) => string> => ({
  l0: c.yellow,
  l1: c.blue,
  image: c.green,
  open: c.magenta,
  frozen: c.magenta,
})
const markerColor = (c: ChalkInstance): Record<MarkerKind, (s: string) => string> => ({
  branch: c.cyan,
  gc_cutoff: c.red,
  disk_consistent: c.white,
  last_record: c.white,
})

/** One slot's cells, inclusive. */
type Span = [number, number]

/**
 * Cells for slots in order: each gets one cell and `grow` slots share what is left; with fewer cells
 * than slots, several slots share a cell (the picture is then lossy, never wider than asked).
 */
function allocate(grow: readonly boolean[], cells: number): Span[] {
  const n = grow.length
  if (cells < n) return grow.map((_, j) => [Math.floor((j * cells) / n), Math.floor((j * cells) / n)])
  const growing = grow.filter(Boolean).length || n
  const extra = cells - n
  let given = 0
  let at = 0
  return grow.map((g) => {
    let w = 1
    if (g || growing === n) {
      w += Math.floor(extra / growing) + (given < extra % growing ? 1 : 0)
      given++
    }
    const span: Span = [at, at + w - 1]
    at += w
    return span
  })
}

/**
 * The LSN axis bottom-up as slots: a point slot at each LSN with an image band or a marker, an interval
 * slot between neighbouring LSNs (where deltas are), so a band never hides the first row of a delta.
 */
function lsnSlots(g: LayerMapGeometry) {
  const nLsn = g.lsns.length
  const isPoint = new Array<boolean>(nLsn).fill(false)
  for (const r of g.rects) if (r.y0 === r.y1) isPoint[r.y0] = true
  for (const m of g.markers) isPoint[m.y] = true
  // The top LSN gets a row of its own, so its label is not on the row of the layers below it.
  if (nLsn > 0) isPoint[nLsn - 1] = true
  const pointSlot: number[] = []
  const intervalSlot: number[] = []
  const grow: boolean[] = []
  for (let i = 0; i < nLsn; i++) {
    if (isPoint[i]) pointSlot[i] = grow.push(false) - 1
    if (i < nLsn - 1) intervalSlot[i] = grow.push(true) - 1
  }
  return { isPoint, pointSlot, intervalSlot, grow }
}

/** A row for every slot of the LSN axis plus the legend and the key axis, 12 to 48 rows, within the terminal. */
export function defaultTextHeight(g: LayerMapGeometry, terminalRows?: number): number {
  const want = Math.min(48, Math.max(12, lsnSlots(g).grow.length + 3))
  return terminalRows === undefined ? want : Math.max(MIN_TEXT_HEIGHT, Math.min(want, terminalRows - 2))
}

export interface TextOptions {
  /** Columns of every line, at least MIN_TEXT_WIDTH. */
  width: number
  /** Lines, at least MIN_TEXT_HEIGHT: a legend, the plot, the key axis and its labels. */
  height: number
  color: boolean
}

export function checkTextSize(opts: { width: number; height: number }): void {
  const bad = (what: string, v: number, min: number) =>
    new LayerMapSizeError(`a layer map ${v} ${what} is too small: it needs at least ${min}`, {
      hint: `pass a ${what === 'columns wide' ? '--width' : '--height'} of ${min} or more`,
    })
  if (!Number.isInteger(opts.width) || opts.width < MIN_TEXT_WIDTH)
    throw bad('columns wide', opts.width, MIN_TEXT_WIDTH)
  if (!Number.isInteger(opts.height) || opts.height < MIN_TEXT_HEIGHT)
    throw bad('rows high', opts.height, MIN_TEXT_HEIGHT)
}

const truncate = (s: string, w: number) =>
  s.length <= w ? s : w <= 1 ? s.slice(0, w) : `${s.slice(0, w - 1)}…`

export function drawLayerMapText(model: LayerMapModel | LayerMapGeometry, opts: TextOptions): string[] {
  checkTextSize(opts)
  const g = 'rects' in model ? model : layerMapGeometry(model)
  const c = new Chalk({ level: opts.color ? 1 : 0 })
  const fillOf = (k: LayerKind) => kindColor(c)[k](FILL[k])

  const legend = [
    `${fillOf('l0')} L0 delta`,
    `${fillOf('l1')} L1 delta`,
    `${fillOf('image')} image`,
    `${fillOf('open')} in-memory`,
  ].join('  ')

  const nLsn = g.lsns.length
  const { isPoint, pointSlot, intervalSlot, grow } = lsnSlots(g)

  const markerLabels = new Map<number, { text: string; kind: MarkerKind }>()
  for (const m of g.markers) {
    const prev = markerLabels.get(m.y)
    markerLabels.set(m.y, { text: prev ? `${prev.text}, ${m.label}` : m.label, kind: prev?.kind ?? m.kind })
  }
  const lsnWidth = Math.max(1, ...g.lsns.map((l) => l.length))
  const markWidth =
    markerLabels.size === 0
      ? 0
      : Math.min(30, 3 + Math.max(...[...markerLabels.values()].map((m) => m.text.length)))
  const plotWidth = opts.width - lsnWidth - 2 - markWidth
  const plotHeight = opts.height - 3
  if (plotWidth < 10)
    throw new LayerMapSizeError(`a layer map ${opts.width} columns wide leaves no room to draw the layers`, {
      hint: `pass a --width of ${opts.width - plotWidth + 10} or more`,
    })

  const rows = allocate(grow.length > 0 ? grow : [true], plotHeight)
  const nKey = g.keys.length
  const cols = allocate(new Array<boolean>(Math.max(nKey - 1, 1)).fill(true), plotWidth)

  // cells[row from the bottom][col]: the kind painted there
  const cells: (LayerKind | null)[][] = Array.from({ length: plotHeight }, () =>
    new Array<LayerKind | null>(plotWidth).fill(null),
  )
  const rowSpan = (y0: number, y1: number): Span =>
    y0 === y1 ? rows[pointSlot[y0]] : [rows[intervalSlot[y0]][0], rows[intervalSlot[y1 - 1]][1]]
  const colSpan = (x0: number, x1: number): Span =>
    x1 > x0 ? [cols[x0][0], cols[x1 - 1][1]] : cols[Math.min(x0, cols.length - 1)]
  for (const kind of PAINT_ORDER)
    for (const r of g.rects) {
      if (r.kind !== kind) continue
      const [r0, r1] = rowSpan(r.y0, r.y1)
      const [c0, c1] = colSpan(r.x0, r.x1)
      for (let y = r0; y <= r1; y++) for (let x = c0; x <= c1; x++) cells[y][x] = kind
    }

  // An LSN's label goes on its point row, else on the first row of the interval above it.
  const labelAt = new Map<number, string>()
  for (let i = nLsn - 1; i >= 0; i--) {
    const row = rows[pointSlot[i] ?? intervalSlot[i]][0]
    if (!labelAt.has(row) || isPoint[i]) labelAt.set(row, g.lsns[i])
  }
  const markerAt = new Map<number, { text: string; kind: MarkerKind }>()
  for (const [y, m] of markerLabels) markerAt.set(rows[pointSlot[y]][0], m)

  const lines: string[] = []
  for (let y = plotHeight - 1; y >= 0; y--) {
    const mk = markerAt.get(y)
    const paint = mk ? markerColor(c)[mk.kind] : null
    let plot = ''
    for (let x = 0; x < plotWidth; x++) {
      const k = cells[y][x]
      // A marker's line crosses deltas (they show on the rows around it) but not image bands at its LSN.
      plot += paint && k !== 'image' ? paint('─') : k ? fillOf(k) : ' '
    }
    const label = (labelAt.get(y) ?? '').padStart(lsnWidth)
    const axisChar = labelAt.has(y) ? '┤' : '│'
    const right = mk && paint ? paint(` ◂ ${truncate(mk.text, markWidth - 3)}`) : ''
    lines.push(`${c.dim(label)} ${axisChar}${plot}${right}`)
  }

  // Key axis: a tick at each key bound shown, its label under it, thinned so that labels never touch.
  const tickCol = (i: number) => (i < cols.length ? cols[i][0] : plotWidth - 1)
  const keyLabels = g.keys.map((k) => k.label)
  const shown = thinLabels(
    keyLabels.map((_, i) => tickCol(i)),
    keyLabels.map((l) => Math.min(l.length, plotWidth)),
    2,
  ).filter((i) => plotWidth - tickCol(i) >= Math.min(keyLabels[i].length, 3))
  const axisCells = new Array<string>(plotWidth).fill('─')
  let labelRow = ''
  for (const i of shown) {
    axisCells[tickCol(i)] = '┬'
    const text = truncate(keyLabels[i], plotWidth - tickCol(i))
    labelRow = labelRow.padEnd(tickCol(i)) + text
  }
  const indent = ' '.repeat(lsnWidth + 1)
  lines.push(`${indent}└${axisCells.join('')}`)
  lines.push(c.dim(`${indent} ${labelRow}`.trimEnd()))
  return [truncateVisible(legend, opts.width, opts.color), ...lines]
}

/** The legend cut to the width; with colour, cut on plain text so no escape code is split. */
function truncateVisible(text: string, width: number, color: boolean): string {
  if (visibleWidth(text) <= width) return text
  if (color) {
    // Drop whole legend entries from the end until it fits.
    const parts = text.split('  ')
    while (parts.length > 1 && visibleWidth(parts.join('  ')) > width) parts.pop()
    return parts.join('  ')
  }
  return truncate(text, width)
}
