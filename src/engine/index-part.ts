/**
 * A timeline's index in remote storage (`index_part.json-<generation>`, after Neon's index_part.json):
 * the layer files that make up the timeline, each with its size and the generation whose object holds
 * it, and the metadata a pageserver needs to open the timeline without its local disk. Every layer an
 * uploaded index lists exists in remote storage (the upload queue keeps that), so the index alone is a
 * consistent picture of the timeline up to its disk_consistent_lsn.
 *
 * LSNs are written as Postgres prints them (`0/16B3748`), as in Neon's JSON.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import { parseLayerName } from './layer-name.js'
import { checkGeneration } from './remote-layout.js'

export const INDEX_PART_VERSION = 1
export const PG_VERSION = 15

export interface IndexLayerMetadata {
  fileSize: number
  /** The generation in the layer object's key (`<layer-name>-<generation>`). */
  generation: number
}

export interface IndexMetadata {
  diskConsistentLsn: Lsn
  /** Not known after a restart (the timeline does not persist it). */
  prevRecordLsn: Lsn | null
  ancestorTimeline: string | null
  /** 0 without an ancestor. */
  ancestorLsn: Lsn
  latestGcCutoffLsn: Lsn
  initdbLsn: Lsn
  pgVersion: number
}

export interface IndexPart {
  version: number
  layers: Record<string, IndexLayerMetadata>
  metadata: IndexMetadata
}

export class IndexPartError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'IndexPartError'
}

/** Why an index cannot be stored or loaded, or null when it can. */
function checkIndex(ip: IndexPart): string | null {
  if (ip.version !== INDEX_PART_VERSION) return `version ${ip.version} is not ${INDEX_PART_VERSION}`
  const m = ip.metadata
  if (m.pgVersion !== PG_VERSION) return `metadata.pg_version ${m.pgVersion} is not ${PG_VERSION}`
  for (const [name, l] of Object.entries(ip.layers)) {
    if (!parseLayerName(name)) return `layer_metadata: "${name}" is not a layer file name`
    if (!Number.isSafeInteger(l.fileSize) || l.fileSize < 0)
      return `layer_metadata["${name}"].file_size ${l.fileSize} is not a byte count`
    const bad = checkGeneration(l.generation)
    if (bad) return `layer_metadata["${name}"].generation: ${bad}`
  }
  if (m.ancestorTimeline !== null && !/^[0-9a-f]{32}$/.test(m.ancestorTimeline))
    return `metadata.ancestor_timeline "${m.ancestorTimeline}" is not a timeline id (32 hex digits)`
  if (m.ancestorTimeline === null && Object.keys(ip.layers).length === 0)
    return 'it has no ancestor and no layers: such a timeline holds no data'
  return null
}

export function encodeIndexPart(ip: IndexPart): Buffer {
  const bad = checkIndex(ip)
  if (bad) throw new IndexPartError(`cannot store index_part: ${bad}`, { kind: 'bug' })
  const m = ip.metadata
  const layers: Record<string, { file_size: number; generation: number }> = {}
  for (const name of Object.keys(ip.layers).sort())
    layers[name] = { file_size: ip.layers[name].fileSize, generation: ip.layers[name].generation }
  const json = {
    version: ip.version,
    layer_metadata: layers,
    disk_consistent_lsn: formatLsn(m.diskConsistentLsn),
    metadata: {
      disk_consistent_lsn: formatLsn(m.diskConsistentLsn),
      prev_record_lsn: m.prevRecordLsn === null ? null : formatLsn(m.prevRecordLsn),
      ancestor_timeline: m.ancestorTimeline,
      ancestor_lsn: formatLsn(m.ancestorLsn),
      latest_gc_cutoff_lsn: formatLsn(m.latestGcCutoffLsn),
      initdb_lsn: formatLsn(m.initdbLsn),
      pg_version: m.pgVersion,
    },
  }
  return Buffer.from(`${JSON.stringify(json, null, 2)}\n`)
}

/** Reads an index; `where` names it in errors (its remote key). */
export function decodeIndexPart(buf: Buffer, where: string): IndexPart {
  const fail = (what: string): never => {
    throw new IndexPartError(`index_part ${where}: ${what}`, {
      hint: 'the object was written by something other than zenith, or damaged; an older generation of the index may still be intact',
    })
  }
  let root: unknown
  try {
    root = JSON.parse(buf.toString('utf8'))
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`)
  }
  const obj = (v: unknown, field: string): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : fail(`${field} is not an object`)
  const int = (v: unknown, field: string): number =>
    Number.isSafeInteger(v) && (v as number) >= 0
      ? (v as number)
      : fail(`${field} is not a non-negative integer`)
  const lsn = (v: unknown, field: string): Lsn => {
    if (typeof v !== 'string') return fail(`${field} is not an LSN string like "0/16B3748"`)
    try {
      return parseLsn(v)
    } catch (err) {
      return fail(`${field}: ${(err as Error).message}`)
    }
  }
  const r = obj(root, 'the document')
  const md = obj(r.metadata, 'metadata')
  const layers: Record<string, IndexLayerMetadata> = {}
  for (const [name, v] of Object.entries(obj(r.layer_metadata, 'layer_metadata'))) {
    const l = obj(v, `layer_metadata["${name}"]`)
    layers[name] = {
      fileSize: int(l.file_size, `layer_metadata["${name}"].file_size`),
      generation: int(l.generation, `layer_metadata["${name}"].generation`),
    }
  }
  const ancestor = md.ancestor_timeline
  if (ancestor !== null && typeof ancestor !== 'string')
    fail('metadata.ancestor_timeline is not a string or null')
  const ip: IndexPart = {
    version: int(r.version, 'version'),
    layers,
    metadata: {
      diskConsistentLsn: lsn(md.disk_consistent_lsn, 'metadata.disk_consistent_lsn'),
      prevRecordLsn: md.prev_record_lsn === null ? null : lsn(md.prev_record_lsn, 'metadata.prev_record_lsn'),
      ancestorTimeline: ancestor as string | null,
      ancestorLsn: lsn(md.ancestor_lsn, 'metadata.ancestor_lsn'),
      latestGcCutoffLsn: lsn(md.latest_gc_cutoff_lsn, 'metadata.latest_gc_cutoff_lsn'),
      initdbLsn: lsn(md.initdb_lsn, 'metadata.initdb_lsn'),
      pgVersion: int(md.pg_version, 'metadata.pg_version'),
    },
  }
  const top = lsn(r.disk_consistent_lsn, 'disk_consistent_lsn')
  if (top !== ip.metadata.diskConsistentLsn)
    fail(
      `disk_consistent_lsn ${formatLsn(top)} differs from metadata.disk_consistent_lsn ${formatLsn(ip.metadata.diskConsistentLsn)}`,
    )
  const bad = checkIndex(ip)
  if (bad) fail(bad)
  return ip
}
