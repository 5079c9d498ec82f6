/**
 * Which keys of a Postgres datadir still exist at an LSN, from its directories and sizes: the key space
 * image layers are built for. Keys of dropped relations and databases, truncated blocks and removed SLRU
 * segments stay in older layers (history needs them) but no longer belong in new images.
 */

import type { Timeline } from '../engine/timeline.js'
import { BLCKSZ } from '../postgres/data-page.js'
import type { Lsn } from '../postgres/lsn.js'
import { type ControlFile, decodeControlFile } from '../postgres/pg-control.js'
import {
  CONTROLFILE_KEY,
  classifyKey,
  DBDIR_KEY,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  decodeU32Set,
  REPLORIGIN_DIR_KEY,
  relDirKey,
  relSizeKey,
  type SlruKind,
  slruDirKey,
  slruSegSizeKey,
  TWOPHASE_DIR_KEY,
} from './datadir-mapping.js'

/** Reads a key's value at the LSN in question (null when it has none). */
export type KeyReader = (key: Buffer) => Buffer | null

export function datadirKeyFilter(read: KeyReader): (key: Buffer) => boolean {
  const dbdir = read(DBDIR_KEY)
  const dbs = new Set((dbdir ? decodeDbDir(dbdir) : []).map((d) => `${d.spcNode}/${d.dbNode}`))
  const relDirs = new Map<string, Set<string> | null>()
  const sizes = new Map<string, number | null>()
  const slruSegs = new Map<SlruKind, Set<number>>()
  const twophase = read(TWOPHASE_DIR_KEY)
  const xids = new Set(twophase ? decodeU32Set(twophase, 'two-phase directory') : [])
  const origins = read(REPLORIGIN_DIR_KEY)
  const roidents = new Set(origins ? decodeU32Set(origins, 'replication origin directory') : [])

  const relsOf = (spc: number, db: number): Set<string> | null => {
    const id = `${spc}/${db}`
    if (!relDirs.has(id)) {
      const v = dbs.has(id) ? read(relDirKey(spc, db)) : null
      relDirs.set(id, v ? new Set(decodeRelDir(v).map((e) => `${e.relNode}/${e.forkNum}`)) : null)
    }
    return relDirs.get(id)!
  }
  const sizeOf = (key: Buffer): number | null => {
    const id = key.toString('latin1')
    if (!sizes.has(id)) {
      const v = read(key)
      sizes.set(id, v ? decodeSize(v) : null)
    }
    return sizes.get(id)!
  }

  return (key) => {
    const k = classifyKey(key)
    switch (k.kind) {
      case 'rel-block':
      case 'rel-size': {
        const rels = relsOf(k.rel.spcNode, k.rel.dbNode)
        if (!rels?.has(`${k.rel.relNode}/${k.rel.forkNum}`)) return false
        if (k.kind === 'rel-size') return true
        const size = sizeOf(relSizeKey(k.rel))
        return size !== null && k.blkno < size
      }
      case 'relmap':
      case 'reldir':
        return k.spcNode === 1664 || dbs.has(`${k.spcNode}/${k.dbNode}`)
      case 'slru-block':
      case 'slru-size': {
        let segs = slruSegs.get(k.slru)
        if (!segs) {
          const v = read(slruDirKey(k.slru))
          segs = new Set(v ? decodeU32Set(v, 'SLRU directory') : [])
          slruSegs.set(k.slru, segs)
        }
        if (!segs.has(k.segno)) return false
        if (k.kind === 'slru-size') return true
        const size = sizeOf(slruSegSizeKey(k.slru, k.segno))
        return size !== null && k.blkno < size
      }
      case 'twophase-file':
        return xids.has(k.xid)
      case 'replorigin':
        return roidents.has(k.roident)
      default:
        return true
    }
  }
}

/** The filter for a timeline holding a Postgres datadir, as Repository's `imageKeyFilter` takes it. */
export function postgresImageKeyFilter(tl: Timeline, lsn: Lsn): (key: Buffer) => boolean {
  return datadirKeyFilter((key) => tl.get(key, lsn))
}

/** Bytes of every relation fork of one database, as Postgres' pg_database_size counts its files. */
export function databaseSize(read: KeyReader, spcNode: number, dbNode: number): number {
  const dir = read(relDirKey(spcNode, dbNode))
  if (!dir) return 0
  let blocks = 0
  for (const e of decodeRelDir(dir)) {
    const size = read(relSizeKey({ spcNode, dbNode, relNode: e.relNode, forkNum: e.forkNum }))
    if (size) blocks += decodeSize(size)
  }
  return blocks * BLCKSZ
}

/** Neon's current_logical_size: the bytes of all relations of all databases (SLRUs and the rest excluded). */
export function logicalSize(read: KeyReader): number {
  const dbdir = read(DBDIR_KEY)
  let bytes = 0
  for (const db of dbdir ? decodeDbDir(dbdir) : []) bytes += databaseSize(read, db.spcNode, db.dbNode)
  return bytes
}

/** The cluster's pg_control as the timeline holds it; null before anything was imported. */
export function controlFileOf(read: KeyReader): ControlFile | null {
  const v = read(CONTROLFILE_KEY)
  return v ? decodeControlFile(v) : null
}
