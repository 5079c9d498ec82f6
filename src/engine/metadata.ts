/**
 * A timeline's metadata file: where its durable data ends (disk_consistent_lsn), its ancestor and branch
 * point, and the GC cutoff below which reads are refused. JSON for people, followed by a CRC-32C line so
 * a damaged file is detected rather than trusted; written with temp + fsync + rename.
 */

import { readFileSync } from 'node:fs'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { crc32c } from '../postgres/crc32c.js'

export const METADATA_FORMAT_VERSION = 1

export interface TimelineMetadata {
  formatVersion: number
  diskConsistentLsn: number
  ancestorTimelineId: string | null
  /** Branch point: the ancestor's LSN this timeline starts from (0 without an ancestor). */
  ancestorLsn: number
  latestGcCutoffLsn: number
  /** The first LSN of the timeline's own data: its import or branch point. */
  initLsn: number
  createdAt: string
}

export class MetadataError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'MetadataError'
}

export function encodeMetadata(m: TimelineMetadata): Buffer {
  const json = JSON.stringify(m, null, 2)
  const crc = crc32c(Buffer.from(json)).toString(16).padStart(8, '0')
  return Buffer.from(`${json}\ncrc32c ${crc}\n`)
}

export function decodeMetadata(buf: Buffer, file: string): TimelineMetadata {
  const text = buf.toString('utf8')
  const m = /\ncrc32c ([0-9a-f]{8})\n$/.exec(text)
  if (!m) throw new MetadataError(`timeline metadata ${file}: no CRC line at the end (offset ${buf.length})`)
  const json = text.slice(0, m.index)
  const want = Number.parseInt(m[1], 16)
  const got = crc32c(Buffer.from(json))
  if (got !== want) {
    throw new MetadataError(
      `timeline metadata ${file}: CRC-32C mismatch over bytes 0..${Buffer.byteLength(json)} (stored ${m[1]}, computed ${got.toString(16).padStart(8, '0')})`,
    )
  }
  const md = JSON.parse(json) as TimelineMetadata
  if (md.formatVersion !== METADATA_FORMAT_VERSION) {
    throw new MetadataError(
      `timeline metadata ${file}: format version ${md.formatVersion}, expected ${METADATA_FORMAT_VERSION}`,
    )
  }
  for (const f of ['diskConsistentLsn', 'ancestorLsn', 'latestGcCutoffLsn', 'initLsn'] as const) {
    if (!Number.isSafeInteger(md[f]) || md[f] < 0)
      throw new MetadataError(`timeline metadata ${file}: invalid ${f}`)
  }
  return md
}

export function readMetadata(file: string): TimelineMetadata {
  return decodeMetadata(readFileSync(file), file)
}

export function writeMetadata(file: string, m: TimelineMetadata): void {
  writeFileDurable(file, encodeMetadata(m))
}
