/**
 * Layer file names, in Neon's scheme, so that a directory listing alone tells which layers exist:
 *
 *   delta  `<keystart 36 hex>-<keyend 36 hex>__<lsnstart 16 hex>-<lsnend 16 hex>`
 *   image  `<keystart 36 hex>-<keyend 36 hex>__<lsn 16 hex>`
 *
 * Hex is upper-case. Both ranges are half-open; an image at `lsn` is described as the LSN range
 * [lsn, lsn+1) so that code comparing LSN ranges treats both kinds alike. Only the canonical spelling
 * parses: accepting lower-case too would let two file names denote the same layer.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { KEY_MAX, KEY_MIN, KEY_SIZE, keyFromHex, keyToHex } from './key.js'

export type LayerKind = 'delta' | 'image'

export interface LayerDesc {
  kind: LayerKind
  keyStart: Buffer
  keyEnd: Buffer
  lsnStart: number
  /** Exclusive; lsnStart + 1 for an image layer. */
  lsnEnd: number
}

export class LayerNameError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'LayerNameError'
}

const NAME_RE = /^([0-9A-F]{36})-([0-9A-F]{36})__([0-9A-F]{16})(?:-([0-9A-F]{16}))?$/
const TWO_32 = 0x1_0000_0000

function lsnHex(lsn: number): string {
  const hi = Math.floor(lsn / TWO_32)
  const lo = lsn - hi * TWO_32
  return hi.toString(16).toUpperCase().padStart(8, '0') + lo.toString(16).toUpperCase().padStart(8, '0')
}

/** null when the 16 digits exceed 2^53 - 1, the largest LSN zenith handles. */
function parseLsnHex(hex: string): number | null {
  const hi = Number.parseInt(hex.slice(0, 8), 16)
  const lo = Number.parseInt(hex.slice(8), 16)
  const v = hi * TWO_32 + lo
  return hi < 0x20_0000 ? v : null
}

/** Why a description cannot name a layer, or null when it can. */
export function checkLayerDesc(d: LayerDesc): string | null {
  if (d.keyStart.length !== KEY_SIZE || d.keyEnd.length !== KEY_SIZE) return `keys are ${KEY_SIZE} bytes`
  if (Buffer.compare(d.keyStart, d.keyEnd) >= 0) {
    return `empty key range ${keyToHex(d.keyStart)}..${keyToHex(d.keyEnd)}`
  }
  for (const lsn of [d.lsnStart, d.lsnEnd]) {
    if (!Number.isSafeInteger(lsn) || lsn < 0) return `LSN ${lsn} is not an integer in 0 .. 2^53-1`
  }
  if (d.kind === 'image') {
    if (d.lsnEnd !== d.lsnStart + 1)
      return `an image layer covers [lsn, lsn+1), got ${d.lsnStart}..${d.lsnEnd}`
  } else if (d.kind === 'delta') {
    if (d.lsnStart >= d.lsnEnd) return `empty LSN range ${d.lsnStart}..${d.lsnEnd}`
  } else {
    return `unknown layer kind ${String(d.kind)}`
  }
  return null
}

export function formatLayerName(d: LayerDesc): string {
  const bad = checkLayerDesc(d)
  if (bad) throw new LayerNameError(`cannot name a layer: ${bad}`)
  const keys = `${keyToHex(d.keyStart)}-${keyToHex(d.keyEnd)}`
  return d.kind === 'image'
    ? `${keys}__${lsnHex(d.lsnStart)}`
    : `${keys}__${lsnHex(d.lsnStart)}-${lsnHex(d.lsnEnd)}`
}

/** The layer a file name denotes, or null for any other name (temp files, metadata, typos). */
export function parseLayerName(name: string): LayerDesc | null {
  const m = NAME_RE.exec(name)
  if (!m) return null
  const lsnStart = parseLsnHex(m[3])
  if (lsnStart === null) return null
  let desc: LayerDesc
  if (m[4] === undefined) {
    desc = {
      kind: 'image',
      keyStart: keyFromHex(m[1]),
      keyEnd: keyFromHex(m[2]),
      lsnStart,
      lsnEnd: lsnStart + 1,
    }
  } else {
    const lsnEnd = parseLsnHex(m[4])
    if (lsnEnd === null) return null
    desc = { kind: 'delta', keyStart: keyFromHex(m[1]), keyEnd: keyFromHex(m[2]), lsnStart, lsnEnd }
  }
  return checkLayerDesc(desc) === null ? desc : null
}

/** An L0 delta layer covers the whole key space: it is what a flush writes. */
export function isL0Desc(d: LayerDesc): boolean {
  return d.kind === 'delta' && d.keyStart.equals(KEY_MIN) && d.keyEnd.equals(KEY_MAX)
}
