/**
 * Relations and databases: block images (every block reference carries the page after the change under
 * wal_consistency_checking = all), the visibility-map bits heap changes clear on a VM page they do not
 * reference, fork creation and truncation, database creation and drop, relmap files, and tablespaces.
 */

import { pageAfterRecord } from '../../postgres/block-image.js'
import { formatLsn } from '../../postgres/lsn.js'
import { setPageChecksum } from '../../postgres/page-checksum.js'
import { parseDbaseRecord } from '../../postgres/records/dbase.js'
import { heapVmClears } from '../../postgres/records/heap.js'
import { parseRelMapRecord } from '../../postgres/records/relmap.js'
import { parseSmgrRecord, SMGR_TRUNCATE_HEAP, SMGR_TRUNCATE_VM } from '../../postgres/records/smgr.js'
import { parseTblspcRecord } from '../../postgres/records/tblspc.js'
import { GLOBALTABLESPACE_OID } from '../../postgres/relfile.js'
import { recordTypeName, rmgrName } from '../../postgres/rmgr.js'
import { type DecodedRecord, MAIN_FORKNUM, VISIBILITYMAP_FORKNUM } from '../../postgres/xlog-record.js'
import {
  decodeRelDir,
  decodeU32Set,
  encodeRelDir,
  encodeU32Set,
  relBlockKey,
  relDirKey,
  relmapKey,
  TBLSPC_DIR_KEY,
} from '../datadir-mapping.js'
import { IngestError, type IngestState } from './state.js'

/** Heap blocks one VM page covers: 2 bits each in the 8168 bytes after the page header. */
const HEAPBLOCKS_PER_VM_PAGE = 32672

export function applyBlocks(s: IngestState, rec: DecodedRecord): void {
  for (const b of rec.blocks) {
    if (!b.image) {
      throw new IngestError(
        `record at ${formatLsn(rec.lsn)} (${rmgrName(rec.rmid)}/${recordTypeName(rec.rmid, rec.info)}) has block ` +
          `reference ${b.id} without a page image: the compute must run with wal_consistency_checking = all`,
      )
    }
    const rel = { spcNode: b.spcNode, dbNode: b.dbNode, relNode: b.relNode, forkNum: b.forkNum }
    const page = pageAfterRecord(rec, b)
    if (s.dataChecksums) setPageChecksum(page, b.blkno)
    s.put(relBlockKey(rel, b.blkno), page)
    const size = s.relSize(rel)
    if (size === null) s.addRel(rel)
    if (size === null || b.blkno >= size) s.setRelSize(rel, b.blkno + 1)
  }
}

/** Heap and Heap2: the VM bits a change clears, on the VM page of each heap block it names. */
export function clearVmBits(s: IngestState, rec: DecodedRecord): void {
  const clears = heapVmClears(rec.rmid, rec.info, rec.mainData)
  if (!clears) return
  const block0 = rec.blocks.find((b) => b.id === 0)
  const block1 = rec.blocks.find((b) => b.id === 1)
  if (block0 && clears.block0) clearVm(s, block0, clears.block0)
  if (clears.oldPage) {
    const old = block1 ?? block0
    if (old) clearVm(s, old, clears.oldPage)
  }
}

function clearVm(
  s: IngestState,
  heap: { spcNode: number; dbNode: number; relNode: number; blkno: number },
  bits: number,
): void {
  const vm = {
    spcNode: heap.spcNode,
    dbNode: heap.dbNode,
    relNode: heap.relNode,
    forkNum: VISIBILITYMAP_FORKNUM,
  }
  const vmBlock = Math.floor(heap.blkno / HEAPBLOCKS_PER_VM_PAGE)
  const size = s.relSize(vm)
  if (size === null || vmBlock >= size) return
  const cur = s.read(relBlockKey(vm, vmBlock))
  if (!cur) return
  const within = heap.blkno % HEAPBLOCKS_PER_VM_PAGE
  const byte = 24 + Math.floor(within / 4)
  const mask = bits << ((within % 4) * 2)
  if ((cur[byte] & mask) === 0) return
  const page = Buffer.from(cur)
  page[byte] &= ~mask
  if (s.dataChecksums) setPageChecksum(page, vmBlock)
  s.put(relBlockKey(vm, vmBlock), page)
}

export function applySmgr(s: IngestState, rec: DecodedRecord): void {
  const r = parseSmgrRecord(rec.info, rec.mainData)
  if (r.kind === 'create') {
    s.addRel({ ...r.rnode, forkNum: r.forkNum })
    return
  }
  if (r.flags & SMGR_TRUNCATE_HEAP) {
    const main = { ...r.rnode, forkNum: MAIN_FORKNUM }
    const size = s.relSize(main)
    if (size !== null && r.blkno < size) s.setRelSize(main, r.blkno)
  }
  if (r.flags & SMGR_TRUNCATE_VM) {
    const vm = { ...r.rnode, forkNum: VISIBILITYMAP_FORKNUM }
    const size = s.relSize(vm)
    if (size !== null) {
      const keep = Math.ceil(r.blkno / HEAPBLOCKS_PER_VM_PAGE)
      if (keep < size) s.setRelSize(vm, keep)
      // Bits of heap blocks past the new end, in the last VM page kept, are cleared too.
      const last = Math.floor(r.blkno / HEAPBLOCKS_PER_VM_PAGE)
      const within = r.blkno % HEAPBLOCKS_PER_VM_PAGE
      if (within > 0 && last < size) {
        const cur = s.read(relBlockKey(vm, last))
        if (cur) {
          const page = Buffer.from(cur)
          const byte = 24 + Math.floor(within / 4)
          const keepBits = (within % 4) * 2
          page[byte] &= (1 << keepBits) - 1
          page.fill(0, byte + 1)
          if (s.dataChecksums) setPageChecksum(page, last)
          s.put(relBlockKey(vm, last), page)
        }
      }
    }
  }
}

export function applyDbase(s: IngestState, rec: DecodedRecord): void {
  const r = parseDbaseRecord(rec.info, rec.mainData)
  if (r.kind === 'create_wal_log') {
    s.addDb({ spcNode: r.tablespaceId, dbNode: r.dbId, hasRelmap: true })
    if (!s.read(relDirKey(r.tablespaceId, r.dbId))) s.put(relDirKey(r.tablespaceId, r.dbId), encodeRelDir([]))
    return
  }
  if (r.kind === 'create_file_copy') {
    const src = s.read(relDirKey(r.srcTablespaceId, r.srcDbId))
    if (!src)
      throw new IngestError(
        `CREATE DATABASE at ${formatLsn(rec.lsn)} copies database ${r.srcDbId}, which does not exist`,
      )
    const entries = decodeRelDir(src)
    for (const e of entries) {
      const from = { spcNode: r.srcTablespaceId, dbNode: r.srcDbId, relNode: e.relNode, forkNum: e.forkNum }
      const to = { spcNode: r.tablespaceId, dbNode: r.dbId, relNode: e.relNode, forkNum: e.forkNum }
      const n = s.relSize(from) ?? 0
      for (let b = 0; b < n; b++) {
        const page = s.read(relBlockKey(from, b))
        if (page) s.put(relBlockKey(to, b), page)
      }
      s.setRelSize(to, n)
    }
    s.put(relDirKey(r.tablespaceId, r.dbId), encodeRelDir(entries))
    const relmap = s.read(relmapKey(r.srcTablespaceId, r.srcDbId))
    if (relmap) s.put(relmapKey(r.tablespaceId, r.dbId), relmap)
    s.addDb({ spcNode: r.tablespaceId, dbNode: r.dbId, hasRelmap: true })
    return
  }
  const dropped = new Set(r.tablespaceIds.map((ts) => `${ts}/${r.dbId}`))
  s.setDbs(s.dbs().filter((d) => !dropped.has(`${d.spcNode}/${d.dbNode}`)))
}

/** Tablespace CREATE and DROP: the tablespaces a basebackup makes directories for, empty or not. */
export function applyTblspc(s: IngestState, rec: DecodedRecord): void {
  const r = parseTblspcRecord(rec.info, rec.mainData)
  const cur = s.read(TBLSPC_DIR_KEY)
  const oids = new Set(cur ? decodeU32Set(cur, 'tablespace directory') : [])
  if (r.kind === 'create') oids.add(r.tsId)
  else oids.delete(r.tsId)
  s.put(TBLSPC_DIR_KEY, encodeU32Set(oids))
}

export function applyRelMap(s: IngestState, rec: DecodedRecord): void {
  const r = parseRelMapRecord(rec.info, rec.mainData)
  const spc = r.dbId === 0 ? GLOBALTABLESPACE_OID : r.tsId
  s.put(relmapKey(spc, r.dbId), Buffer.from(r.data))
  if (r.dbId !== 0) s.addDb({ spcNode: spc, dbNode: r.dbId, hasRelmap: true })
}
