/**
 * The layer map as a picture, before it is drawn: keys across, LSNs up, one rectangle per layer (pagectl
 * draw-timeline). Both axes are compressed to the coordinates that occur: every distinct key bound and
 * LSN bound is one step, so a layer a few hundred bytes of WAL wide is as visible as one of gigabytes,
 * and the picture shows the layers' arrangement rather than their proportions. Pure: the SVG and the
 * terminal renderers draw what this returns, and `layer map --json` prints it.
 */

import {
  type AnyLayer,
  isHistoric,
  type LayerKind,
  type LayerMapMarker,
  layerBytes,
  layerKeyRange,
  layerKind,
  layerName,
  type MarkerKind,
} from '../control/layers.js'
import { KEY_MAX, KEY_MIN, keyFromHex, keyToHex } from '../engine/key.js'
import type { LayerMapInfo } from '../pageserver/api-types.js'
import { describeBound } from '../pgdata/key-describe.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'

/** The layers and the LSNs to mark across them; `last_record_lsn` is where the open layer ends. */
export interface LayerMapModel extends LayerMapInfo {
  markers: readonly LayerMapMarker[]
  last_record_lsn?: string
}

export interface LayerRect {
  kind: LayerKind
  /** The file name, or `open@<lsn>` for an in-memory layer. */
  name: string
  bytes: number
  keys: string
  lsns: string
  /** Positions on the key axis, x0 < x1. */
  x0: number
  x1: number
  /** Positions on the LSN axis, y0 < y1; an image layer has one LSN: y0 = y1. */
  y0: number
  y1: number
}

export interface MarkerLine {
  kind: MarkerKind
  label: string
  lsn: string
  y: number
}

export interface LayerMapGeometry {
  /** Key axis: position i is keys[i] (hex, and in words). */
  keys: { hex: string; label: string }[]
  /** LSN axis: position i is lsns[i], bottom to top. */
  lsns: string[]
  rects: LayerRect[]
  markers: MarkerLine[]
}

const KEY_MIN_HEX = keyToHex(KEY_MIN)
const KEY_MAX_HEX = keyToHex(KEY_MAX)

/** Sorted distinct values and each one's position. */
function axis<T>(values: Iterable<T>, compare: (a: T, b: T) => number): { sorted: T[]; pos: Map<T, number> } {
  const sorted = [...new Set(values)].sort(compare)
  return { sorted, pos: new Map(sorted.map((v, i) => [v, i])) }
}

export function layerMapGeometry(m: LayerMapModel): LayerMapGeometry {
  const lastRecord = m.last_record_lsn === undefined ? 0 : parseLsn(m.last_record_lsn)
  const layers: AnyLayer[] = [...m.historic_layers, ...m.in_memory_layers]
  // An in-memory layer holds every key; an open one reaches as far as ingest has come.
  const keyBounds = (l: AnyLayer): [string, string] =>
    isHistoric(l) ? [l.key_start, l.key_end] : [KEY_MIN_HEX, KEY_MAX_HEX]
  const lsnBounds = (l: AnyLayer): [number, number] => {
    const start = parseLsn(l.lsn_start)
    if (l.lsn_end !== undefined) return [start, parseLsn(l.lsn_end)]
    return [start, l.kind === 'Open' ? Math.max(start, lastRecord) : start]
  }
  const keys = axis(
    layers.flatMap(keyBounds),
    (a, b) => (a < b ? -1 : a > b ? 1 : 0), // equal-length upper-case hex sorts as the keys do
  )
  const markers = m.markers.filter((mk) => parseLsn(mk.lsn) > 0)
  const lsns = axis([...layers.flatMap(lsnBounds), ...markers.map((mk) => parseLsn(mk.lsn))], (a, b) => a - b)
  const rects = layers.map((l): LayerRect => {
    const [k0, k1] = keyBounds(l)
    const [l0, l1] = lsnBounds(l)
    const kind = layerKind(l)
    return {
      kind,
      name: layerName(l),
      bytes: layerBytes(l),
      keys: layerKeyRange(l),
      lsns: kind === 'image' ? l.lsn_start : `${l.lsn_start}-${l.lsn_end ?? ''}`,
      x0: keys.pos.get(k0)!,
      x1: keys.pos.get(k1)!,
      y0: lsns.pos.get(l0)!,
      // A delta's end is exclusive and an image's one LSN is drawn as a band at it.
      y1: kind === 'image' ? lsns.pos.get(l0)! : lsns.pos.get(l1)!,
    }
  })
  return {
    keys: keys.sorted.map((hex) => ({ hex, label: describeBound(keyFromHex(hex)) })),
    lsns: lsns.sorted.map(formatLsn),
    rects,
    markers: markers.map((mk) => ({ ...mk, y: lsns.pos.get(parseLsn(mk.lsn))! })),
  }
}

/** Indexes of labels to show, in order, so that no two are closer than `gap` (positions in any unit). */
export function thinLabels(positions: readonly number[], sizes: readonly number[], gap: number): number[] {
  const shown: number[] = []
  let end = Number.NEGATIVE_INFINITY
  positions.forEach((p, i) => {
    if (p >= end) {
      shown.push(i)
      end = p + sizes[i] + gap
    }
  })
  return shown
}
