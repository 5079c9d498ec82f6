/**
 * MultiXact records as multixact_redo applies them: zeroed pages of pg_multixact/offsets and members, a
 * new multixact's offset and members, nextMulti / nextMultiOffset, and truncation of both SLRUs with
 * oldestMulti moving to the new horizon.
 */

import { parseMultiXactRecord } from '../../postgres/records/multixact.js'
import {
  MAX_MEMBER_SEGMENT,
  multiXactIdToOffsetPage,
  multiXactOffsetPagePrecedes,
  mxOffsetToMemberPage,
  mxOffsetToMemberSegment,
  writeMultiXactMember,
  writeMultiXactOffset,
} from '../../postgres/slru.js'
import { previousMultiXactId } from '../../postgres/transaction-id.js'
import type { DecodedRecord } from '../../postgres/xlog-record.js'
import { SlruKind } from '../datadir-mapping.js'
import { removeSlruSegments, truncateSlru, updateSlruPage, zeroSlruPage } from './slru.js'
import type { IngestState } from './state.js'

export function applyMultiXact(s: IngestState, rec: DecodedRecord): void {
  const r = parseMultiXactRecord(rec.info, rec.mainData)
  switch (r.kind) {
    case 'zero_off_page':
      zeroSlruPage(s, SlruKind.MultiXactOffsets, r.pageno)
      return
    case 'zero_mem_page':
      zeroSlruPage(s, SlruKind.MultiXactMembers, r.pageno)
      return
    case 'create_id': {
      updateSlruPage(s, SlruKind.MultiXactOffsets, multiXactIdToOffsetPage(r.mid), (p) =>
        writeMultiXactOffset(p, r.mid, r.moff),
      )
      for (let i = 0; i < r.members.length; i++) {
        const m = r.members[i]
        const off = (r.moff + i) % 0x1_0000_0000
        updateSlruPage(s, SlruKind.MultiXactMembers, mxOffsetToMemberPage(off), (p) =>
          writeMultiXactMember(p, off, m.xid, m.status),
        )
        s.trackXid(m.xid)
      }
      const cp = s.checkPoint()
      cp.nextMulti = Math.max(cp.nextMulti, r.mid + 1)
      cp.nextMultiOffset = Math.max(cp.nextMultiOffset, r.moff + r.members.length)
      s.checkpointChanged()
      return
    }
    case 'truncate_id': {
      // SetMultiXactIdLimit: the oldest multixact is where offsets now start.
      const cp = s.checkPoint()
      cp.oldestMulti = r.endTruncOff
      cp.oldestMultiDb = r.oldestMultiDb
      s.checkpointChanged()
      // PerformMembersTruncation: every segment from the old start up to the new one's, wrapping.
      const start = mxOffsetToMemberSegment(r.startTruncMemb)
      const end = mxOffsetToMemberSegment(r.endTruncMemb)
      const gone = new Set<number>()
      for (let seg = start; seg !== end; seg = seg === MAX_MEMBER_SEGMENT ? 0 : seg + 1) gone.add(seg)
      removeSlruSegments(s, SlruKind.MultiXactMembers, (seg) => gone.has(seg))
      // PerformOffsetsTruncation steps back one multixact, so that a cutoff at the first id of a page
      // never passes a page that does not exist yet.
      truncateSlru(
        s,
        SlruKind.MultiXactOffsets,
        multiXactOffsetPagePrecedes,
        multiXactIdToOffsetPage(previousMultiXactId(r.endTruncOff)),
      )
      return
    }
  }
}
