/**
 * RelMap UPDATE records and the pg_filenode.map image they carry. Mapped catalogs (pg_class and friends)
 * have relfilenode 0 in pg_class; this map is the only place their file numbers live, per database
 * (base/<db>/pg_filenode.map) and for shared catalogs (global/pg_filenode.map, dbId 0).
 */
import { crc32c } from '../crc32c.js'
import { XLOG_RELMAP_UPDATE, XLR_RMGR_INFO_MASK } from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export const RELMAPPER_FILEMAGIC = 0x592717
export const RELMAPPER_FILESIZE = 512

const MAX_MAPPINGS = 62
const MAPPINGS_OFFSET = 8
/** The CRC covers magic, count and all 62 slots; the 4 pad bytes after it are outside. */
const CRC_OFFSET = MAPPINGS_OFFSET + MAX_MAPPINGS * 8

export interface RelMapUpdate {
  kind: 'update'
  /** 0 for the shared map in global/. */
  dbId: number
  tsId: number
  nbytes: number
  /** The complete new map file, to be written verbatim (a view into the main data, not a copy). */
  data: Buffer
}

export interface RelMapping {
  mapOid: number
  mapFilenode: number
}

export function parseRelMapRecord(info: number, data: Buffer): RelMapUpdate {
  const op = info & XLR_RMGR_INFO_MASK
  if (op !== XLOG_RELMAP_UPDATE) {
    throw unknownOpError('RELMAP', info)
  }
  const r = new MainDataReader('RELMAP UPDATE', data)
  const dbId = r.u32('dbid')
  const tsId = r.u32('tsid')
  const nbytes = r.i32('nbytes')
  // Redo PANICs on any other size, so a different one can only mean corruption.
  if (nbytes !== RELMAPPER_FILESIZE) r.fail(`nbytes ${nbytes} is not the map file size ${RELMAPPER_FILESIZE}`)
  return { kind: 'update', dbId, tsId, nbytes, data: r.bytes(nbytes, 'map image') }
}

/** Validates a pg_filenode.map image (magic, count, CRC-32C) and returns its live mappings. */
export function decodeRelMapFile(buf: Buffer): RelMapping[] {
  const r = new MainDataReader('pg_filenode.map', buf)
  if (buf.length !== RELMAPPER_FILESIZE) r.fail(`is ${buf.length} bytes, expected ${RELMAPPER_FILESIZE}`)
  const magic = r.i32('magic')
  if (magic !== RELMAPPER_FILEMAGIC) {
    r.fail(`magic 0x${magic.toString(16)} is not 0x${RELMAPPER_FILEMAGIC.toString(16)}`)
  }
  const stored = buf.readUInt32LE(CRC_OFFSET)
  const computed = crc32c(buf.subarray(0, CRC_OFFSET))
  if (stored !== computed) {
    r.fail(`CRC-32C 0x${stored.toString(16)} does not match computed 0x${computed.toString(16)}`)
  }
  const n = r.i32('num_mappings')
  if (n < 0 || n > MAX_MAPPINGS) r.fail(`num_mappings ${n} is outside 0..${MAX_MAPPINGS}`)
  const out: RelMapping[] = []
  for (let i = 0; i < n; i++) out.push({ mapOid: r.u32('mapoid'), mapFilenode: r.u32('mapfilenode') })
  return out
}
