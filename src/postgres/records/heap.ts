/**
 * The parts of Heap / Heap2 records the pageserver must apply itself. Heap page changes arrive as block
 * images, but clearing visibility-map bits is a side effect on a VM page that the record does not reference,
 * so it is decoded here from the flags byte of each record's fixed header.
 */
import {
  RM_HEAP_ID,
  RM_HEAP2_ID,
  XLOG_HEAP_DELETE,
  XLOG_HEAP_HOT_UPDATE,
  XLOG_HEAP_INSERT,
  XLOG_HEAP_LOCK,
  XLOG_HEAP_OPMASK,
  XLOG_HEAP_UPDATE,
  XLOG_HEAP2_LOCK_UPDATED,
  XLOG_HEAP2_MULTI_INSERT,
  XLOG_HEAP2_VISIBLE,
} from '../rmgr.js'
import { MainDataReader, unknownOpError } from './main-data.js'

export const VISIBILITYMAP_ALL_VISIBLE = 0x01
export const VISIBILITYMAP_ALL_FROZEN = 0x02
export const VISIBILITYMAP_VALID_BITS = VISIBILITYMAP_ALL_VISIBLE | VISIBILITYMAP_ALL_FROZEN

/** XLH_INSERT_ALL_VISIBLE_CLEARED, XLH_DELETE_ALL_VISIBLE_CLEARED, XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED. */
const XLH_ALL_VISIBLE_CLEARED = 0x01
const XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED = 0x02
const XLH_LOCK_ALL_FROZEN_CLEARED = 0x01

export interface HeapVmClears {
  /** VISIBILITYMAP_* bits to clear for the heap block of block reference 0 (for an update, the new tuple's). */
  block0: number
  /**
   * Updates only: bits to clear for the old tuple's heap block — block reference 1 when the record has one,
   * otherwise block 0 (old and new tuple share the page). 0 for every other record.
   */
  oldPage: number
}

/**
 * Which VM bits a Heap/Heap2 record clears, or null when it clears none (including every record of other
 * rmgrs and every op without such flags). Clearing never touches the VM page's LSN.
 */
export function heapVmClears(rmid: number, info: number, data: Buffer): HeapVmClears | null {
  const op = info & XLOG_HEAP_OPMASK
  let block0 = 0
  let oldPage = 0
  if (rmid === RM_HEAP_ID) {
    switch (op) {
      case XLOG_HEAP_INSERT:
        if (flagsAt(data, 2, 'HEAP INSERT') & XLH_ALL_VISIBLE_CLEARED) block0 = VISIBILITYMAP_VALID_BITS
        break
      case XLOG_HEAP_DELETE:
        if (flagsAt(data, 7, 'HEAP DELETE') & XLH_ALL_VISIBLE_CLEARED) block0 = VISIBILITYMAP_VALID_BITS
        break
      case XLOG_HEAP_UPDATE:
      case XLOG_HEAP_HOT_UPDATE: {
        const flags = flagsAt(data, 7, op === XLOG_HEAP_UPDATE ? 'HEAP UPDATE' : 'HEAP HOT_UPDATE')
        if (flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED) block0 = VISIBILITYMAP_VALID_BITS
        if (flags & XLH_ALL_VISIBLE_CLEARED) oldPage = VISIBILITYMAP_VALID_BITS
        break
      }
      case XLOG_HEAP_LOCK:
        if (flagsAt(data, 7, 'HEAP LOCK') & XLH_LOCK_ALL_FROZEN_CLEARED) block0 = VISIBILITYMAP_ALL_FROZEN
        break
    }
  } else if (rmid === RM_HEAP2_ID) {
    if (op === XLOG_HEAP2_MULTI_INSERT) {
      if (flagsAt(data, 0, 'HEAP2 MULTI_INSERT') & XLH_ALL_VISIBLE_CLEARED) block0 = VISIBILITYMAP_VALID_BITS
    } else if (op === XLOG_HEAP2_LOCK_UPDATED) {
      const flags = flagsAt(data, 7, 'HEAP2 LOCK_UPDATED')
      if (flags & XLH_LOCK_ALL_FROZEN_CLEARED) block0 = VISIBILITYMAP_ALL_FROZEN
    }
  }
  return block0 === 0 && oldPage === 0 ? null : { block0, oldPage }
}

function flagsAt(data: Buffer, offset: number, record: string): number {
  const r = new MainDataReader(record, data)
  r.skip(offset, 'fields before flags')
  return r.u8('flags')
}

/** Heap2 VISIBLE: block 0 is the VM page, block 1 the heap page; both carry images. */
export interface HeapVisible {
  /** Newest xid the page's tuples were checked against (conflict horizon for standbys). */
  cutoffXid: number
  /** VISIBILITYMAP_* bits being set. */
  flags: number
}

export function parseHeapVisible(info: number, data: Buffer): HeapVisible {
  const op = info & XLOG_HEAP_OPMASK
  if (op !== XLOG_HEAP2_VISIBLE) throw unknownOpError('HEAP2 VISIBLE', info)
  const r = new MainDataReader('HEAP2 VISIBLE', data)
  return { cutoffXid: r.u32('cutoff_xid'), flags: r.u8('flags') }
}
