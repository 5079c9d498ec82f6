/**
 * SLRU pages (PG15 slru.c, clog.c, commit_ts.c, multixact.c): the 8 KiB pages of pg_xact, pg_commit_ts
 * and pg_multixact, where a transaction or multixact id lands in them, and which segment files a
 * truncation removes. All integers are little-endian.
 *
 *   pg_xact page        2 bits per xid, 4 xids a byte, the lowest xid in the low bits: 32768 xids a page
 *   pg_commit_ts page   819 CommitTimestampEntry, packed (the page's last 2 bytes are unused):
 *                         off 0  size 8  time    TimestampTz (µs since 2000-01-01 00:00:00 UTC)
 *                         off 8  size 2  nodeid  RepOriginId (0 = InvalidRepOriginId: a local commit)
 *   offsets page        2048 MultiXactOffset (uint32): where each multixact's members start
 *   members page        409 groups of 20 bytes — 4 status bytes, then 4 member xids (uint32) — 1636 members
 *
 * Segment files hold 32 pages and are named by their number as %04X.
 */
import { BLCKSZ } from './data-page.js'
import {
  FirstMultiXactId,
  FirstNormalTransactionId,
  multiXactIdPrecedes,
  transactionIdPrecedes,
} from './transaction-id.js'

export const SLRU_PAGES_PER_SEGMENT = 32

/** The file name of segment `segno` within its SLRU directory. */
export function slruSegmentName(segno: number): string {
  return segno.toString(16).toUpperCase().padStart(4, '0')
}

// --- pg_xact -------------------------------------------------------------------------------------------

export const CLOG_XACTS_PER_PAGE = BLCKSZ * 4
export const TRANSACTION_STATUS_COMMITTED = 0x01
export const TRANSACTION_STATUS_ABORTED = 0x02

export function transactionIdToClogPage(xid: number): number {
  return Math.floor(xid / CLOG_XACTS_PER_PAGE)
}

/** Sets the two status bits of `xid` on its pg_xact page. */
export function setClogStatus(page: Buffer, xid: number, status: number): void {
  const within = xid % CLOG_XACTS_PER_PAGE
  const byte = Math.floor(within / 4)
  const shift = (within % 4) * 2
  page[byte] = (page[byte] & ~(3 << shift)) | (status << shift)
}

export function clogStatus(page: Buffer, xid: number): number {
  const within = xid % CLOG_XACTS_PER_PAGE
  return (page[Math.floor(within / 4)] >> ((within % 4) * 2)) & 3
}

// --- pg_commit_ts --------------------------------------------------------------------------------------

/** SizeOfCommitTimestampEntry: the struct's 8 + 2 bytes without its padding. */
export const SIZE_OF_COMMIT_TIMESTAMP_ENTRY = 10
export const COMMIT_TS_XACTS_PER_PAGE = Math.floor(BLCKSZ / SIZE_OF_COMMIT_TIMESTAMP_ENTRY)

export interface CommitTimestampEntry {
  /** TimestampTz: microseconds since 2000-01-01 00:00:00 UTC; 0 = none recorded. */
  time: number
  /** RepOriginId of the replication origin that committed it; 0 for a local commit. */
  nodeId: number
}

export function transactionIdToCommitTsPage(xid: number): number {
  return Math.floor(xid / COMMIT_TS_XACTS_PER_PAGE)
}

const commitTsOffset = (xid: number) => (xid % COMMIT_TS_XACTS_PER_PAGE) * SIZE_OF_COMMIT_TIMESTAMP_ENTRY

export function writeCommitTsEntry(page: Buffer, xid: number, entry: CommitTimestampEntry): void {
  const at = commitTsOffset(xid)
  page.writeBigInt64LE(BigInt(entry.time), at)
  page.writeUInt16LE(entry.nodeId, at + 8)
}

export function readCommitTsEntry(page: Buffer, xid: number): CommitTimestampEntry {
  const at = commitTsOffset(xid)
  return { time: Number(page.readBigInt64LE(at)), nodeId: page.readUInt16LE(at + 8) }
}

// --- pg_multixact --------------------------------------------------------------------------------------

export const MULTIXACT_OFFSETS_PER_PAGE = BLCKSZ / 4
const MULTIXACT_MEMBERS_PER_MEMBERGROUP = 4
const MULTIXACT_MEMBERGROUP_SIZE = 4 + MULTIXACT_MEMBERS_PER_MEMBERGROUP * 4
const MULTIXACT_MEMBERGROUPS_PER_PAGE = Math.floor(BLCKSZ / MULTIXACT_MEMBERGROUP_SIZE)
export const MULTIXACT_MEMBERS_PER_PAGE = MULTIXACT_MEMBERGROUPS_PER_PAGE * MULTIXACT_MEMBERS_PER_MEMBERGROUP
/** MaxMultiXactOffset: member offsets wrap after 2^32 − 1. */
const MAX_MULTIXACT_OFFSET = 0xffffffff

export function multiXactIdToOffsetPage(multi: number): number {
  return Math.floor(multi / MULTIXACT_OFFSETS_PER_PAGE)
}

export function writeMultiXactOffset(page: Buffer, multi: number, offset: number): void {
  page.writeUInt32LE(offset, (multi % MULTIXACT_OFFSETS_PER_PAGE) * 4)
}

export function mxOffsetToMemberPage(offset: number): number {
  return Math.floor(offset / MULTIXACT_MEMBERS_PER_PAGE)
}

/** MXOffsetToMemberSegment */
export function mxOffsetToMemberSegment(offset: number): number {
  return Math.floor(mxOffsetToMemberPage(offset) / SLRU_PAGES_PER_SEGMENT)
}

/** The last members segment; the one after it is segment 0 again. */
export const MAX_MEMBER_SEGMENT = mxOffsetToMemberSegment(MAX_MULTIXACT_OFFSET)

/** Writes member `offset`'s status byte and xid into its group on its members page. */
export function writeMultiXactMember(page: Buffer, offset: number, xid: number, status: number): void {
  const inPage = offset % MULTIXACT_MEMBERS_PER_PAGE
  const group = Math.floor(inPage / MULTIXACT_MEMBERS_PER_MEMBERGROUP) * MULTIXACT_MEMBERGROUP_SIZE
  const slot = inPage % MULTIXACT_MEMBERS_PER_MEMBERGROUP
  page[group + slot] = status
  page.writeUInt32LE(xid, group + 4 + slot * 4)
}

// --- truncation ----------------------------------------------------------------------------------------

/** An SLRU's PagePrecedes callback: is page1 logically older than page2, with ids wrapping. */
export type PagePrecedes = (page1: number, page2: number) => boolean

/**
 * The PagePrecedes of the xid-indexed SLRUs (CLOGPagePrecedes, CommitTsPagePrecedes): page1 precedes page2
 * when its every xid precedes the first (offset past the special ids) and the last xid of page2.
 */
function xidPagePrecedes(xactsPerPage: number): PagePrecedes {
  return (page1, page2) => {
    const xid1 = (page1 * xactsPerPage + FirstNormalTransactionId + 1) >>> 0
    const xid2 = (page2 * xactsPerPage + FirstNormalTransactionId + 1) >>> 0
    return transactionIdPrecedes(xid1, xid2) && transactionIdPrecedes(xid1, (xid2 + xactsPerPage - 1) >>> 0)
  }
}

export const clogPagePrecedes: PagePrecedes = xidPagePrecedes(CLOG_XACTS_PER_PAGE)
export const commitTsPagePrecedes: PagePrecedes = xidPagePrecedes(COMMIT_TS_XACTS_PER_PAGE)

export const multiXactOffsetPagePrecedes: PagePrecedes = (page1, page2) => {
  const multi1 = (page1 * MULTIXACT_OFFSETS_PER_PAGE + FirstMultiXactId + 1) >>> 0
  const multi2 = (page2 * MULTIXACT_OFFSETS_PER_PAGE + FirstMultiXactId + 1) >>> 0
  return (
    multiXactIdPrecedes(multi1, multi2) &&
    multiXactIdPrecedes(multi1, (multi2 + MULTIXACT_OFFSETS_PER_PAGE - 1) >>> 0)
  )
}

/**
 * SlruMayDeleteSegment: SimpleLruTruncate(cutoffPage) removes a segment only when both its first and its
 * last page precede the cutoff page.
 */
export function slruMayDeleteSegment(precedes: PagePrecedes, segno: number, cutoffPage: number): boolean {
  const first = segno * SLRU_PAGES_PER_SEGMENT
  return precedes(first, cutoffPage) && precedes(first + SLRU_PAGES_PER_SEGMENT - 1, cutoffPage)
}
