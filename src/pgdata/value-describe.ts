/**
 * Values as a person reads them, for `zenith layer dump`: what an image holds under its key (a page and
 * its pd_lsn, a size, a directory and how many entries it has), and for a record the Postgres WAL record
 * it carries, named as pg_waldump names it.
 */
import type { Value } from '../engine/value.js'
import { ZenithError } from '../lib/errors.js'
import { decodeCheckPoint } from '../postgres/checkpoint.js'
import { BLCKSZ, getPageLsn } from '../postgres/data-page.js'
import { formatLsn } from '../postgres/lsn.js'
import { recordTypeName, rmgrName } from '../postgres/rmgr.js'
import { decodeRecord } from '../postgres/xlog-record.js'
import {
  type DatadirKey,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  decodeU32Set,
  SLRU_DIRS,
} from './datadir-mapping.js'
import { classifyKeyOrNull } from './key-describe.js'

/**
 * The record kind of a value that is one Postgres WAL record as it stands in the WAL, header included
 * (Neon's NeonWalRecord::Postgres). WAL ingest stores page images only today; a layer written by a later
 * version with redo of its own, or by a test, holds these.
 */
export const PG_WAL_RECORD_KIND = 1

export interface ValueDescription {
  /** What the value holds, in words. */
  text: string
  /** For a Postgres WAL record: its resource manager and record type, as pg_waldump names them. */
  rmgr?: string
  recordType?: string
}

export function describeValue(key: Buffer, value: Value): ValueDescription {
  if (value.kind === 'record') return describeRecord(value.recordKind, value.data)
  const d = classifyKeyOrNull(key)
  try {
    return { text: d === null ? `${value.page.length} bytes` : describeImage(d, value.page) }
  } catch (err) {
    // A dump shows what it cannot read instead of stopping at it: the value's CRC was sound.
    if (!(err instanceof ZenithError)) throw err
    return { text: `unreadable: ${err.message}` }
  }
}

function describeRecord(recordKind: number, data: Buffer): ValueDescription {
  if (recordKind !== PG_WAL_RECORD_KIND) return { text: `record kind ${recordKind}, not a WAL record` }
  try {
    // Stored under its end LSN, the record's start is unknown; decodeRecord uses the LSNs in messages only.
    const rec = decodeRecord(data, 0, 0)
    const rmgr = rmgrName(rec.rmid)
    const recordType = recordTypeName(rec.rmid, rec.info)
    const blocks = rec.blocks.length === 1 ? '1 block' : `${rec.blocks.length} blocks`
    return { text: `${rmgr} ${recordType}, tx ${rec.xid}, ${blocks}`, rmgr, recordType }
  } catch (err) {
    if (!(err instanceof ZenithError)) throw err
    return { text: `unreadable WAL record: ${err.message}` }
  }
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

function describeImage(d: DatadirKey, v: Buffer): string {
  switch (d.kind) {
    case 'rel-block':
      return v.length === BLCKSZ ? `page, pd_lsn ${formatLsn(getPageLsn(v))}` : `${v.length} bytes`
    case 'rel-size':
      return `size ${count(decodeSize(v), 'block')}`
    case 'slru-size':
      return `size ${count(decodeSize(v), 'page')}`
    case 'slru-block':
      return `${SLRU_DIRS[d.slru]} page`
    case 'dbdir':
      return count(decodeDbDir(v).length, 'database')
    case 'reldir':
      return count(decodeRelDir(v).length, 'relation fork')
    case 'slru-dir':
      return count(decodeU32Set(v, 'SLRU directory').length, 'segment')
    case 'twophase-dir':
      return count(decodeU32Set(v, 'two-phase directory').length, 'prepared transaction')
    case 'replorigin-dir':
      return count(decodeU32Set(v, 'replication origin directory').length, 'replication origin')
    case 'tblspc-dir':
      return count(decodeU32Set(v, 'tablespace directory').length, 'tablespace')
    case 'relmap':
      return 'relation map file'
    case 'twophase-file':
      return 'two-phase state file'
    case 'controlfile':
      return 'pg_control'
    case 'checkpoint': {
      const cp = decodeCheckPoint(v)
      return `checkpoint: redo ${formatLsn(cp.redo)}, next xid ${cp.nextXid}, next oid ${cp.nextOid}`
    }
    case 'replorigin':
      return 'replication origin progress'
  }
}
