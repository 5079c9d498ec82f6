/**
 * Import of a cleanly shut-down Postgres datadir (what initdb leaves) into a new timeline: every relation
 * fork block, relation sizes and directories, SLRU segments (pg_xact, pg_multixact, pg_commit_ts),
 * two-phase files, relmap files, the progress of replication origins, the tablespaces, pg_control and
 * the checkpoint
 * become values at one LSN, the end of the datadir's shutdown checkpoint record, which is where its WAL
 * would continue.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Tenant } from '../engine/tenant.js'
import type { Timeline, Write } from '../engine/timeline.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { encodeCheckPoint } from '../postgres/checkpoint.js'
import { BLCKSZ } from '../postgres/data-page.js'
import { type Lsn, writeLsn } from '../postgres/lsn.js'
import { type ControlFile, DBState, decodeControlFile } from '../postgres/pg-control.js'
import {
  DEFAULTTABLESPACE_OID,
  GLOBALTABLESPACE_OID,
  parseRelFileName,
  RELSEG_SIZE,
  relationSegmentPath,
  TABLESPACE_VERSION_DIRECTORY,
} from '../postgres/relfile.js'
import { decodeReplOriginCheckpoint } from '../postgres/replorigin-checkpoint.js'
import { SLRU_PAGES_PER_SEGMENT } from '../postgres/slru.js'
import { recordEndLsn } from '../postgres/wal-page.js'
import {
  CHECKPOINT_KEY,
  CONTROLFILE_KEY,
  DBDIR_KEY,
  type DbDirEntry,
  encodeDbDir,
  encodeRelDir,
  encodeSize,
  encodeU32Set,
  REPLORIGIN_DIR_KEY,
  type RelDirEntry,
  relBlockKey,
  relDirKey,
  relmapKey,
  relSizeKey,
  replOriginKey,
  SLRU_DIRS,
  SLRU_KINDS,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
  TBLSPC_DIR_KEY,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from './datadir-mapping.js'

/** XLOG CHECKPOINT_SHUTDOWN: 24-byte header, 2-byte main data header, 88-byte CheckPoint. */
const CHECKPOINT_RECORD_LEN = 114

export class ImportError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'ImportError'
}

export interface ImportResult {
  timeline: Timeline
  lsn: Lsn
  relations: number
  blocks: number
  bytes: number
}

/** The LSN an imported datadir's data stands at: the end of its shutdown checkpoint record. */
export function importLsnOf(datadir: string): { lsn: Lsn; control: Buffer; cf: ControlFile } {
  const file = path.join(datadir, 'global', 'pg_control')
  let control: Buffer
  try {
    control = readFileSync(file)
  } catch (err) {
    throw new ImportError(
      `${datadir} is not a PostgreSQL datadir: cannot read global/pg_control (${(err as Error).message})`,
    )
  }
  const cf = decodeControlFile(control)
  if (cf.state !== DBState.DB_SHUTDOWNED) {
    throw new ImportError(
      `${datadir} was not shut down cleanly (pg_control state ${DBState[cf.state] ?? cf.state}); stop the server with pg_ctl stop -m fast first`,
    )
  }
  return { lsn: recordEndLsn(cf.checkPoint, CHECKPOINT_RECORD_LEN, cf.xlogSegSize), control, cf }
}

export function importDatadir(tenant: Tenant, datadir: string, timelineId?: string): ImportResult {
  const { lsn, control, cf } = importLsnOf(datadir)
  const writes: Write[] = []
  const put = (key: Buffer, bytes: Buffer) => writes.push({ key, lsn, value: { kind: 'image', page: bytes } })
  let relations = 0
  let blocks = 0
  let bytes = 0

  /** Imports one database directory; returns whether it holds the database's relmap (its own directory). */
  const importRelDir = (dir: string, spcNode: number, dbNode: number): boolean => {
    const forks = new Map<string, { relNode: number; forkNum: number; segs: number[] }>()
    for (const name of readdirSync(dir)) {
      const p = parseRelFileName(name)
      if (!p) continue
      const id = `${p.relNode}/${p.forkNum}`
      const f = forks.get(id) ?? { relNode: p.relNode, forkNum: p.forkNum, segs: [] }
      f.segs.push(p.segNo)
      forks.set(id, f)
    }
    const dirEntries: RelDirEntry[] = []
    for (const f of forks.values()) {
      const rel = { spcNode, dbNode, relNode: f.relNode, forkNum: f.forkNum }
      let nblocks = 0
      for (const seg of f.segs.sort((a, b) => a - b)) {
        const file = path.join(dir, path.basename(relationSegmentPath(rel, f.forkNum, seg)))
        const data = readFileSync(file)
        if (data.length % BLCKSZ !== 0) {
          throw new ImportError(
            `${file} is ${data.length} bytes, not a whole number of ${BLCKSZ}-byte blocks`,
          )
        }
        for (let off = 0; off < data.length; off += BLCKSZ) {
          const blkno = seg * RELSEG_SIZE + off / BLCKSZ
          put(relBlockKey(rel, blkno), data.subarray(off, off + BLCKSZ))
          nblocks = Math.max(nblocks, blkno + 1)
          blocks++
        }
        bytes += data.length
      }
      put(relSizeKey(rel), encodeSize(nblocks))
      dirEntries.push({ relNode: f.relNode, forkNum: f.forkNum })
      relations++
    }
    put(relDirKey(spcNode, dbNode), encodeRelDir(dirEntries))
    const relmap = path.join(dir, 'pg_filenode.map')
    if (!existsSync(relmap)) return false
    put(relmapKey(spcNode, dbNode), readFileSync(relmap))
    return true
  }

  const dbs: DbDirEntry[] = [
    {
      spcNode: GLOBALTABLESPACE_OID,
      dbNode: 0,
      hasRelmap: importRelDir(path.join(datadir, 'global'), GLOBALTABLESPACE_OID, 0),
    },
  ]
  const importDbDirs = (parent: string, spcNode: number) => {
    for (const name of readdirSync(parent)) {
      if (!/^\d+$/.test(name)) continue
      dbs.push({
        spcNode,
        dbNode: Number(name),
        hasRelmap: importRelDir(path.join(parent, name), spcNode, Number(name)),
      })
    }
  }
  importDbDirs(path.join(datadir, 'base'), DEFAULTTABLESPACE_OID)
  // pg_tblspc/<oid> links to the tablespace's location, which holds a version directory of databases.
  const tablespaces = readdirSync(path.join(datadir, 'pg_tblspc'))
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
  for (const oid of tablespaces) {
    importDbDirs(path.join(datadir, 'pg_tblspc', String(oid), TABLESPACE_VERSION_DIRECTORY), oid)
  }
  put(DBDIR_KEY, encodeDbDir(dbs))
  put(TBLSPC_DIR_KEY, encodeU32Set(tablespaces))

  for (const kind of SLRU_KINDS) {
    const dir = path.join(datadir, SLRU_DIRS[kind])
    const segnos: number[] = []
    for (const name of readdirSync(dir)) {
      if (!/^[0-9A-F]{4,}$/.test(name)) continue
      const segno = Number.parseInt(name, 16)
      const data = readFileSync(path.join(dir, name))
      if (data.length % BLCKSZ !== 0 || data.length > SLRU_PAGES_PER_SEGMENT * BLCKSZ) {
        throw new ImportError(`${path.join(dir, name)} is ${data.length} bytes: not an SLRU segment`)
      }
      for (let off = 0; off < data.length; off += BLCKSZ) {
        put(slruBlockKey(kind, segno, off / BLCKSZ), data.subarray(off, off + BLCKSZ))
      }
      put(slruSegSizeKey(kind, segno), encodeSize(data.length / BLCKSZ))
      segnos.push(segno)
      bytes += data.length
    }
    put(slruDirKey(kind), encodeU32Set(segnos))
  }

  const xids: number[] = []
  for (const name of readdirSync(path.join(datadir, 'pg_twophase'))) {
    if (!/^[0-9A-F]{8}$/.test(name)) continue
    const xid = Number.parseInt(name, 16)
    put(twoPhaseFileKey(xid), readFileSync(path.join(datadir, 'pg_twophase', name)))
    xids.push(xid)
  }
  put(TWOPHASE_DIR_KEY, encodeU32Set(xids))

  const originsFile = path.join(datadir, 'pg_logical', 'replorigin_checkpoint')
  const origins = existsSync(originsFile) ? decodeReplOriginCheckpoint(readFileSync(originsFile)) : []
  for (const o of origins) {
    const lsnBytes = Buffer.alloc(8)
    writeLsn(lsnBytes, 0, o.remoteLsn)
    put(replOriginKey(o.roident), lsnBytes)
  }
  put(REPLORIGIN_DIR_KEY, encodeU32Set(origins.map((o) => o.roident)))
  put(CONTROLFILE_KEY, control)
  put(CHECKPOINT_KEY, encodeCheckPoint(cf.checkPointCopy))

  // The timeline starts at the checkpoint record, and the datadir's contents stand at its end.
  const timeline = tenant.createTimeline(cf.checkPoint, timelineId)
  timeline.ingest(writes, lsn)
  return { timeline, lsn, relations, blocks, bytes }
}
