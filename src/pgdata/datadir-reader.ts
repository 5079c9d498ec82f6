/**
 * A Postgres datadir read out of a timeline at one LSN, through the keys of the datadir mapping: what the
 * page service answers (whether a relation exists, its size, its pages, a database's size, an SLRU
 * segment) and what a basebackup lists and copies (databases, relations, SLRU segments, two-phase
 * files, relmaps, pg_control and the checkpoint, replication origins, tablespaces). Something that does not exist reads as null and the
 * caller says what that means; a page that was never written reads as zeros.
 */

import type { Timeline } from '../engine/timeline.js'
import { BLCKSZ } from '../postgres/data-page.js'
import { type Lsn, readLsn } from '../postgres/lsn.js'
import type { ReplicationOriginProgress } from '../postgres/replorigin-checkpoint.js'
import { databaseSize, type KeyReader } from './datadir-keyspace.js'
import {
  CHECKPOINT_KEY,
  CONTROLFILE_KEY,
  DBDIR_KEY,
  type DbDirEntry,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  decodeU32Set,
  REPLORIGIN_DIR_KEY,
  type RelDirEntry,
  type RelTag,
  relBlockKey,
  relDirKey,
  relmapKey,
  relSizeKey,
  replOriginKey,
  type SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
  TBLSPC_DIR_KEY,
  TWOPHASE_DIR_KEY,
  twoPhaseFileKey,
} from './datadir-mapping.js'

const ZERO_PAGE = Buffer.alloc(BLCKSZ)

export class DatadirReader {
  /** The value of one key at the reader's LSN. */
  readonly get: KeyReader

  /** `lsn` must be one the timeline can read at (Timeline.readLsn decides it). */
  constructor(
    readonly timeline: Timeline,
    readonly lsn: Lsn,
  ) {
    this.get = (key) => timeline.get(key, lsn)
  }

  databases(): DbDirEntry[] | null {
    const v = this.get(DBDIR_KEY)
    return v && decodeDbDir(v)
  }

  /** The relation forks of a database. */
  relations(spcNode: number, dbNode: number): RelDirEntry[] | null {
    const v = this.get(relDirKey(spcNode, dbNode))
    return v && decodeRelDir(v)
  }

  /** pg_filenode.map of a database. */
  relmap(spcNode: number, dbNode: number): Buffer | null {
    return this.get(relmapKey(spcNode, dbNode))
  }

  relExists(rel: RelTag): boolean {
    return this.get(relSizeKey(rel)) !== null
  }

  /** Blocks of a relation fork; null when it does not exist. */
  relSize(rel: RelTag): number | null {
    const v = this.get(relSizeKey(rel))
    return v && decodeSize(v)
  }

  /** A block; one never WAL-logged (FSM) or past the end reads as zeros, as Postgres sees new pages. */
  page(rel: RelTag, blkno: number): Buffer {
    return this.get(relBlockKey(rel, blkno)) ?? ZERO_PAGE
  }

  /** Bytes of every relation fork of a database, as pg_database_size counts them. */
  dbSize(spcNode: number, dbNode: number): number {
    return databaseSize(this.get, spcNode, dbNode)
  }

  slruSegments(kind: SlruKind): number[] | null {
    const v = this.get(slruDirKey(kind))
    return v && decodeU32Set(v, 'SLRU directory')
  }

  /** Pages of an SLRU segment; null when it does not exist. */
  slruSegmentSize(kind: SlruKind, segno: number): number | null {
    const v = this.get(slruSegSizeKey(kind, segno))
    return v && decodeSize(v)
  }

  slruPage(kind: SlruKind, segno: number, blkno: number): Buffer {
    return this.get(slruBlockKey(kind, segno, blkno)) ?? ZERO_PAGE
  }

  /** A whole SLRU segment file; null when it does not exist. */
  slruSegment(kind: SlruKind, segno: number): Buffer | null {
    const pages = this.slruSegmentSize(kind, segno)
    if (pages === null) return null
    return Buffer.concat(Array.from({ length: pages }, (_, b) => this.slruPage(kind, segno, b)))
  }

  /** Transactions with a two-phase state file. */
  twoPhaseXids(): number[] | null {
    const v = this.get(TWOPHASE_DIR_KEY)
    return v && decodeU32Set(v, 'two-phase directory')
  }

  twoPhaseFile(xid: number): Buffer | null {
    return this.get(twoPhaseFileKey(xid))
  }

  controlFile(): Buffer | null {
    return this.get(CONTROLFILE_KEY)
  }

  checkpoint(): Buffer | null {
    return this.get(CHECKPOINT_KEY)
  }

  /** Tablespaces other than pg_default and pg_global; null for a timeline imported before they were kept. */
  tablespaces(): number[] | null {
    const v = this.get(TBLSPC_DIR_KEY)
    return v && decodeU32Set(v, 'tablespace directory')
  }

  /** The progress of every replication origin, by id; none for a timeline that never had one. */
  replicationOrigins(): ReplicationOriginProgress[] {
    const dir = this.get(REPLORIGIN_DIR_KEY)
    const out: ReplicationOriginProgress[] = []
    for (const roident of dir ? decodeU32Set(dir, 'replication origin directory') : []) {
      const v = this.get(replOriginKey(roident))
      if (v) out.push({ roident, remoteLsn: readLsn(v, 0) })
    }
    return out
  }
}
