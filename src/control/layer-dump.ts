/**
 * `zenith layer dump`: one layer file read straight from disk (so it works with the pageserver stopped),
 * its header and index summed up, and its entries with keys, values and WAL records in words.
 */
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { type KeyRange, keyFromHex, keyToHex, nextKey, rangeContains } from '../engine/key.js'
import { LayerFileReader, type LayerLayout } from '../engine/layer-file.js'
import { parseLayerName } from '../engine/layer-name.js'
import { PageCache } from '../engine/page-cache.js'
import { TENANTS_DIR } from '../engine/repository.js'
import { TIMELINES_DIR } from '../engine/tenant.js'
import { fromStored } from '../engine/value.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { relForkRange } from '../pgdata/datadir-mapping.js'
import { describeKey, describeKeyRange, parseRelArg } from '../pgdata/key-describe.js'
import { describeValue } from '../pgdata/value-describe.js'
import { formatLsn } from '../postgres/lsn.js'
import { pageserverDir } from './layout.js'
import { DEFAULT_BRANCH, loadClusterConfig, tenantOf, timelineOfBranch } from './repo-config.js'
import { tenantPageserverId } from './tenant-placement.js'

export class LayerDumpError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'LayerDumpError'
}

export interface LayerDumpOptions {
  /** A path to a layer file, or a bare layer file name looked up in the branch's timeline directory. */
  layer: string
  branch?: string
  tenantId?: string
  /** 36 hex digits: only this key's entries. */
  key?: string
  /** `spc/db/rel[.fork]`: only that relation fork's blocks and size. */
  rel?: string
  /** At most this many entries; all when absent. */
  limit?: number
}

export interface LayerDumpSummary {
  name: string
  file: string
  format_version: number
  kind: 'delta' | 'image'
  tenant_id: string
  timeline_id: string
  key_start: string
  key_end: string
  key_range: string
  lsn_start: string
  /** Exclusive, as in the file name. */
  lsn_end: string
  entries: number
  keys: number
  images: number
  records: number
  will_init: number
  value_bytes: number
  stored_value_bytes: number
  compression: string
  block_size: number
  blocks: number
  data_blocks: number
  index_blocks: number
  index_height: number
  index_bytes: number
  file_size: number
  /** Entries that pass --key / --rel (all of them without a filter). */
  matching_entries: number
  /** Matching entries left out by --limit. */
  omitted_entries: number
}

export interface LayerDumpEntry {
  key: string
  key_hex: string
  lsn: string
  kind: 'image' | 'record'
  will_init: boolean
  /** The value's bytes, as stored before compression. */
  size: number
  /** What the value holds, in words. */
  description: string
  rmgr?: string
  record_type?: string
}

export interface LayerDump {
  summary: LayerDumpSummary
  entries: LayerDumpEntry[]
}

/** The few blocks a sequential read of one file needs; values are read ahead past the cache anyway. */
const CACHE_BLOCKS = 64

export function dumpLayer(repoDir: string, opts: LayerDumpOptions): LayerDump {
  const file = resolveLayerFile(repoDir, opts)
  const range = filterRange(opts)
  const reader = LayerFileReader.open(file, new PageCache(CACHE_BLOCKS))
  try {
    const counts = { images: 0, records: 0, willInit: 0, matching: 0 }
    for (const e of reader.versions()) {
      if (e.image) counts.images++
      else counts.records++
      if (e.willInit) counts.willInit++
      if (range === null || rangeContains(range, e.key)) counts.matching++
    }
    const limit = opts.limit ?? Number.POSITIVE_INFINITY
    const entries: LayerDumpEntry[] = []
    if (limit > 0) {
      for (const e of reader.entries(range ?? undefined)) {
        const value = fromStored(e.value, e.willInit, e.image)
        const d = describeValue(e.key, value)
        entries.push({
          key: describeKey(e.key),
          key_hex: keyToHex(e.key),
          lsn: formatLsn(e.lsn),
          kind: value.kind,
          will_init: e.willInit,
          size: e.value.length,
          description: d.text,
          ...(d.rmgr === undefined ? {} : { rmgr: d.rmgr, record_type: d.recordType }),
        })
        if (entries.length >= limit) break
      }
    }
    return {
      summary: summaryOf(reader, counts, entries.length),
      entries,
    }
  } finally {
    reader.close()
  }
}

function summaryOf(
  reader: LayerFileReader,
  c: { images: number; records: number; willInit: number; matching: number },
  shown: number,
): LayerDumpSummary {
  const s = reader.summary
  const l: LayerLayout = reader.layout
  return {
    name: path.basename(reader.path),
    file: reader.path,
    format_version: l.formatVersion,
    kind: s.kind,
    tenant_id: s.tenantId,
    timeline_id: s.timelineId,
    key_start: keyToHex(s.keyStart),
    key_end: keyToHex(s.keyEnd),
    key_range: describeKeyRange({ start: s.keyStart, end: s.keyEnd }),
    lsn_start: formatLsn(s.lsnStart),
    lsn_end: formatLsn(s.lsnEnd),
    entries: s.entries,
    keys: s.keys,
    images: c.images,
    records: c.records,
    will_init: c.willInit,
    value_bytes: s.valueBytes,
    stored_value_bytes: s.storedValueBytes,
    compression: s.compression,
    block_size: l.blockSize,
    blocks: l.blocks,
    data_blocks: l.dataBlocks,
    index_blocks: l.indexBlocks,
    index_height: l.indexHeight,
    index_bytes: l.indexBlocks * l.blockSize,
    file_size: s.fileSize,
    matching_entries: c.matching,
    omitted_entries: c.matching - shown,
  }
}

function filterRange(opts: LayerDumpOptions): KeyRange | null {
  if (opts.key !== undefined && opts.rel !== undefined) {
    throw new LayerDumpError('--key and --rel cannot be used together', {
      hint: 'give one key with --key, or one relation fork with --rel',
    })
  }
  if (opts.key !== undefined) {
    const k = keyFromHex(opts.key)
    return { start: k, end: nextKey(k) }
  }
  return opts.rel === undefined ? null : relForkRange(parseRelArg(opts.rel))
}

/**
 * A bare layer file name is looked up where the pageserver keeps the branch's layers; anything else is a
 * path. The reader checks that a file's header describes the layer its name says.
 */
function resolveLayerFile(repoDir: string, opts: LayerDumpOptions): string {
  const arg = opts.layer
  const bare = !arg.includes('/') && !arg.includes(path.sep)
  if (bare && parseLayerName(arg) !== null) {
    const c = loadClusterConfig(repoDir)
    const tenantId = tenantOf(c, opts.tenantId)
    const branch = opts.branch ?? DEFAULT_BRANCH
    const timelineId = timelineOfBranch(c, tenantId, branch)
    const dir = path.join(
      pageserverDir(repoDir, tenantPageserverId(repoDir, tenantId)),
      TENANTS_DIR,
      tenantId,
      TIMELINES_DIR,
      timelineId,
    )
    const file = path.join(dir, arg)
    if (!existsSync(file)) {
      throw new LayerDumpError(`no layer ${arg} in branch ${branch}: looked in ${dir}`, {
        kind: 'not_found',
        hint: 'layer files are named <key start>-<key end>__<LSN>[-<LSN>]; list that directory to see them',
      })
    }
    return file
  }
  const file = path.resolve(arg)
  if (!existsSync(file)) {
    throw new LayerDumpError(`layer file ${file} does not exist`, {
      kind: 'not_found',
      hint: 'give a path to a layer file, or a layer file name of the branch (--branch, default main)',
    })
  }
  if (!statSync(file).isFile()) throw new LayerDumpError(`${file} is not a file: give a layer file`)
  if (parseLayerName(path.basename(file)) === null) {
    throw new LayerDumpError(
      `${file} is not a layer file: its name is not <key start>-<key end>__<LSN>[-<LSN>] in upper-case hex`,
      { hint: 'layer files live in <repo>/pageserver/tenants/<tenant>/timelines/<timeline>/' },
    )
  }
  return file
}
