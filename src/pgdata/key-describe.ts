/**
 * Keys as a person reads them, for the inspection commands (`timeline layers`, `layer dump`, `layer map`,
 * the dashboard): `rel 1663/5/16384 blk 7`, `rel 1663/5/16384 fork vm size`, `slru pg_xact seg 0 blk 3`.
 * Relations are named as pg_waldump names them (tablespace/database/relfilenode, the fork only when it is
 * not main), so a key in a dump can be matched by eye with a record in `zenith wal dump`.
 */
import { KEY_MAX, KEY_MIN, type KeyRange, keyToHex } from '../engine/key.js'
import { ZenithError } from '../lib/errors.js'
import { FORK_NAMES } from '../postgres/xlog-record.js'
import { classifyKey, type DatadirKey, DatadirKeyError, type RelTag, SLRU_DIRS } from './datadir-mapping.js'

export function relName(rel: RelTag): string {
  const fork = rel.forkNum === 0 ? '' : ` fork ${FORK_NAMES[rel.forkNum] ?? rel.forkNum}`
  return `rel ${rel.spcNode}/${rel.dbNode}/${rel.relNode}${fork}`
}

function describeClassified(d: DatadirKey): string {
  switch (d.kind) {
    case 'dbdir':
      return 'dbdir'
    case 'relmap':
      return `relmap ${d.spcNode}/${d.dbNode}`
    case 'reldir':
      return `reldir ${d.spcNode}/${d.dbNode}`
    case 'rel-block':
      return `${relName(d.rel)} blk ${d.blkno}`
    case 'rel-size':
      return `${relName(d.rel)} size`
    case 'slru-dir':
      return `slru ${SLRU_DIRS[d.slru]} dir`
    case 'slru-block':
      return `slru ${SLRU_DIRS[d.slru]} seg ${d.segno} blk ${d.blkno}`
    case 'slru-size':
      return `slru ${SLRU_DIRS[d.slru]} seg ${d.segno} size`
    case 'twophase-dir':
      return 'twophase dir'
    case 'twophase-file':
      return `twophase xid ${d.xid}`
    case 'controlfile':
      return 'pg_control'
    case 'checkpoint':
      return 'checkpoint'
    case 'replorigin-dir':
      return 'replorigin dir'
    case 'replorigin':
      return `replorigin ${d.roident}`
    case 'tblspc-dir':
      return 'tablespace dir'
  }
}

/** What a key holds; null for keys outside the layout, which occur only as range bounds. */
export function classifyKeyOrNull(k: Buffer): DatadirKey | null {
  try {
    return classifyKey(k)
  } catch (err) {
    if (err instanceof DatadirKeyError) return null
    throw err
  }
}

/** One key in words, or in hex when it is only a bound outside the layout (KEY_MAX is `max`). */
export function describeKey(k: Buffer): string {
  if (k.equals(KEY_MAX)) return 'max'
  const d = classifyKeyOrNull(k)
  return d === null ? keyToHex(k) : describeClassified(d)
}

/**
 * A half-open key range: within one relation fork as `rel 1663/5/16384 blk 0-99` (`blk 0-end` when it
 * takes the size entry too), across forks of one relation as `rel 1663/5/16384 forks main-vm`, anything
 * wider by its first and last keys (`min` and `max` for the ends of the key space).
 */
type RelKey = Extract<DatadirKey, { kind: 'rel-block' | 'rel-size' }>
const isRelKey = (d: DatadirKey | null): d is RelKey =>
  d !== null && (d.kind === 'rel-block' || d.kind === 'rel-size')

export function describeKeyRange(r: KeyRange): string {
  const first = classifyKeyOrNull(r.start)
  const last = Buffer.compare(r.end, r.start) > 0 ? classifyKeyOrNull(lastKeyBefore(r.end)) : null
  if (isRelKey(first) && isRelKey(last)) {
    const [a, b] = [first.rel, last.rel]
    if (a.spcNode === b.spcNode && a.dbNode === b.dbNode && a.relNode === b.relNode) {
      if (a.forkNum !== b.forkNum) {
        const fork = (n: number) => FORK_NAMES[n] ?? String(n)
        return `${relName({ ...a, forkNum: 0 })} forks ${fork(a.forkNum)}-${fork(b.forkNum)}`
      }
      if (first.kind === 'rel-size') return `${relName(a)} size`
      if (last.kind === 'rel-size') return `${relName(a)} blk ${first.blkno}-end`
      return first.blkno === last.blkno
        ? `${relName(a)} blk ${first.blkno}`
        : `${relName(a)} blk ${first.blkno}-${last.blkno}`
    }
  }
  // Bounds in words name the first and the last key held, as the single-fork forms do; the first key
  // as a lower bound means no bound at all rather than the database directory.
  const from = r.start.equals(KEY_MIN) ? 'min' : describeKey(r.start)
  return `${from} .. ${r.end.equals(KEY_MAX) ? 'max' : lastKeyIn(r.end)}`
}

/**
 * A key as a bound between layers (an axis of the layer map): `min` and `max` at the ends of the key
 * space, a key of the layout in words, and a bound between keys as `after` the key below it.
 */
export function describeBound(k: Buffer): string {
  if (k.equals(KEY_MIN)) return 'min'
  if (k.equals(KEY_MAX)) return 'max'
  if (classifyKeyOrNull(k) !== null) return describeKey(k)
  const below = classifyKeyOrNull(lastKeyBefore(k))
  return below === null ? describeKey(k) : `after ${describeClassified(below)}`
}

/**
 * The last key a range ending at `end` holds, in words — or, when that is no key of the layout (the
 * key below a relation's block 0 is a fork number no relation has), `before` the end.
 */
function lastKeyIn(end: Buffer): string {
  const last = classifyKeyOrNull(lastKeyBefore(end))
  if (last === null || (isRelKey(last) && last.rel.forkNum >= FORK_NAMES.length))
    return `before ${describeKey(end)}`
  return describeClassified(last)
}

/** The key just below `k` (k > KEY_MIN): the last key a half-open range ending at `k` can hold. */
function lastKeyBefore(k: Buffer): Buffer {
  const n = Buffer.from(k)
  for (let i = n.length - 1; i >= 0; i--) {
    if (n[i] !== 0) {
      n[i]--
      return n
    }
    n[i] = 0xff
  }
  return n
}

export class RelArgError extends ZenithError {
  static override kind = 'user_input' as const
  override name = 'RelArgError'
}

/** `--rel spc/db/rel[.fork]`, the fork by name (main, fsm, vm, init); main when none is given. */
export function parseRelArg(s: string): RelTag {
  const m = /^(\d+)\/(\d+)\/(\d+)(?:\.(\w+))?$/.exec(s)
  const hint = 'give tablespace/database/relfilenode, e.g. 1663/5/16384, or 1663/5/16384.vm for a fork'
  if (!m) throw new RelArgError(`invalid relation "${s}"`, { hint })
  const forkNum = m[4] === undefined ? 0 : (FORK_NAMES as readonly string[]).indexOf(m[4])
  if (forkNum < 0)
    throw new RelArgError(`invalid fork "${m[4]}" in "${s}": valid forks are ${FORK_NAMES.join(', ')}`, {
      hint,
    })
  const [spcNode, dbNode, relNode] = [m[1], m[2], m[3]].map(Number)
  for (const v of [spcNode, dbNode, relNode])
    if (v > 0xffffffff) throw new RelArgError(`invalid relation "${s}": OIDs are 32-bit`, { hint })
  return { spcNode, dbNode, relNode, forkNum }
}
