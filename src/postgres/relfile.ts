/**
 * Where a relation fork's blocks live in a datadir: `base/<db>/<relfilenode>[_fork][.<segno>]`,
 * `global/<relfilenode>` for shared relations, `pg_tblspc/<spc>/PG_15_202209061/<db>/...` otherwise.
 * Files are split into 1 GiB segments of RELSEG_SIZE blocks.
 */
import { BLCKSZ } from './data-page.js'

export const DEFAULTTABLESPACE_OID = 1663
export const GLOBALTABLESPACE_OID = 1664
export const RELSEG_SIZE = 131072
export const TABLESPACE_VERSION_DIRECTORY = 'PG_15_202209061'

const FORK_SUFFIXES = ['', '_fsm', '_vm', '_init']

export function forkSuffix(forkNum: number): string {
  const suffix = FORK_SUFFIXES[forkNum]
  if (suffix === undefined) throw new RangeError(`invalid fork number ${forkNum}: valid forks are 0 .. 3`)
  return suffix
}

/** A relation segment file's name (`16384`, `16384_vm`, `16384.2`) → its parts; null for other files. */
export function parseRelFileName(name: string): { relNode: number; forkNum: number; segNo: number } | null {
  const m = /^(\d+)(_fsm|_vm|_init)?(?:\.(\d+))?$/.exec(name)
  if (!m) return null
  return { relNode: Number(m[1]), forkNum: FORK_SUFFIXES.indexOf(m[2] ?? ''), segNo: Number(m[3] ?? 0) }
}

/** Postgres' RelFileNode: tablespace OID, database OID (0 for shared relations), relfilenode number. */
export interface RelFileNode {
  spcNode: number
  dbNode: number
  relNode: number
}

export function relationDir(rnode: Pick<RelFileNode, 'spcNode' | 'dbNode'>): string {
  if (rnode.spcNode === GLOBALTABLESPACE_OID) return 'global'
  if (rnode.spcNode === DEFAULTTABLESPACE_OID) return `base/${rnode.dbNode}`
  return `pg_tblspc/${rnode.spcNode}/${TABLESPACE_VERSION_DIRECTORY}/${rnode.dbNode}`
}

/** Datadir-relative path of one segment file of a relation fork. */
export function relationSegmentPath(rnode: RelFileNode, forkNum: number, segNo = 0): string {
  const base = `${relationDir(rnode)}/${rnode.relNode}${forkSuffix(forkNum)}`
  return segNo === 0 ? base : `${base}.${segNo}`
}

/** The segment file and byte offset holding a block. */
export function blockLocation(
  rnode: RelFileNode,
  forkNum: number,
  blkno: number,
): { path: string; offset: number } {
  const segNo = Math.floor(blkno / RELSEG_SIZE)
  return { path: relationSegmentPath(rnode, forkNum, segNo), offset: (blkno % RELSEG_SIZE) * BLCKSZ }
}
