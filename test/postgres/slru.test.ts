/**
 * SLRU page layouts and truncation rules, against values worked out from PG15's clog.c, commit_ts.c,
 * multixact.c and slru.c (the layouts themselves are checked on real Postgres files in
 * test/pgdata/commit-ts.pg.test.ts).
 */
import { describe, expect, it } from 'vitest'
import {
  CLOG_XACTS_PER_PAGE,
  COMMIT_TS_XACTS_PER_PAGE,
  clogPagePrecedes,
  clogStatus,
  commitTsPagePrecedes,
  MAX_MEMBER_SEGMENT,
  MULTIXACT_MEMBERS_PER_PAGE,
  multiXactOffsetPagePrecedes,
  mxOffsetToMemberSegment,
  readCommitTsEntry,
  SIZE_OF_COMMIT_TIMESTAMP_ENTRY,
  setClogStatus,
  slruMayDeleteSegment,
  slruSegmentName,
  TRANSACTION_STATUS_ABORTED,
  TRANSACTION_STATUS_COMMITTED,
  transactionIdToCommitTsPage,
  writeCommitTsEntry,
  writeMultiXactMember,
} from '../../src/postgres/slru.js'
import {
  multiXactIdPrecedes,
  previousMultiXactId,
  transactionIdPrecedes,
} from '../../src/postgres/transaction-id.js'

describe('transaction ids', () => {
  it('compare modulo 2^32, the special ids as plain numbers', () => {
    expect(transactionIdPrecedes(100, 200)).toBe(true)
    expect(transactionIdPrecedes(200, 100)).toBe(false)
    expect(transactionIdPrecedes(100, 100)).toBe(false)
    // 0xFFFFFFF0 is older than 10 once the counter has wrapped.
    expect(transactionIdPrecedes(0xfffffff0, 10)).toBe(true)
    expect(transactionIdPrecedes(10, 10 + 2 ** 31 - 1)).toBe(true)
    expect(transactionIdPrecedes(10, 10 + 2 ** 31 + 1)).toBe(false)
    // InvalidTransactionId precedes every normal xid, whatever the distance.
    expect(transactionIdPrecedes(0, 0xfffffff0)).toBe(true)
    expect(transactionIdPrecedes(0xfffffff0, 2)).toBe(false)
    expect(multiXactIdPrecedes(0xffffffff, 1)).toBe(true)
    expect(previousMultiXactId(1)).toBe(0xffffffff)
    expect(previousMultiXactId(5)).toBe(4)
  })
})

describe('SLRU pages', () => {
  it('names segments as %04X', () => {
    expect(slruSegmentName(0)).toBe('0000')
    expect(slruSegmentName(0x1f)).toBe('001F')
    expect(slruSegmentName(0x12345)).toBe('12345')
  })

  it('keeps 2 status bits per xid in pg_xact, lowest xid in the low bits', () => {
    const page = Buffer.alloc(8192)
    setClogStatus(page, CLOG_XACTS_PER_PAGE * 3 + 5, TRANSACTION_STATUS_COMMITTED)
    setClogStatus(page, 6, TRANSACTION_STATUS_ABORTED)
    expect(page[1]).toBe(0b0010_0100)
    expect(clogStatus(page, 5)).toBe(TRANSACTION_STATUS_COMMITTED)
    setClogStatus(page, 5, TRANSACTION_STATUS_ABORTED)
    expect(page[1]).toBe(0b0010_1000)
  })

  it('packs 819 ten-byte commit timestamp entries a page', () => {
    expect(SIZE_OF_COMMIT_TIMESTAMP_ENTRY).toBe(10)
    expect(COMMIT_TS_XACTS_PER_PAGE).toBe(819)
    expect(transactionIdToCommitTsPage(818)).toBe(0)
    expect(transactionIdToCommitTsPage(819)).toBe(1)
    const page = Buffer.alloc(8192)
    const xid = 819 * 4 + 818
    writeCommitTsEntry(page, xid, { time: 786_543_210_123_456, nodeId: 0xfffe })
    const at = 818 * 10
    expect(page.readBigInt64LE(at)).toBe(786_543_210_123_456n)
    expect(page.readUInt16LE(at + 8)).toBe(0xfffe)
    expect(page.subarray(at + 10).equals(Buffer.alloc(2))).toBe(true)
    expect(readCommitTsEntry(page, xid)).toEqual({ time: 786_543_210_123_456, nodeId: 0xfffe })
    expect(readCommitTsEntry(page, xid - 1)).toEqual({ time: 0, nodeId: 0 })
  })

  it('puts multixact members in groups of four flag bytes and four xids', () => {
    expect(MULTIXACT_MEMBERS_PER_PAGE).toBe(1636)
    const page = Buffer.alloc(8192)
    writeMultiXactMember(page, MULTIXACT_MEMBERS_PER_PAGE + 6, 1234, 5)
    // member 6 of the page: group 1 (bytes 20..39), slot 2
    expect(page[22]).toBe(5)
    expect(page.readUInt32LE(20 + 4 + 8)).toBe(1234)
  })
})

describe('SLRU truncation', () => {
  it('removes a segment only when all of its pages precede the cutoff page', () => {
    // pg_commit_ts segment 0 is pages 0..31; a cutoff on page 32 removes it, one on page 31 does not.
    expect(slruMayDeleteSegment(commitTsPagePrecedes, 0, 32)).toBe(true)
    expect(slruMayDeleteSegment(commitTsPagePrecedes, 0, 31)).toBe(false)
    expect(slruMayDeleteSegment(commitTsPagePrecedes, 1, 40)).toBe(false)
    expect(slruMayDeleteSegment(clogPagePrecedes, 0, 32)).toBe(true)
    expect(slruMayDeleteSegment(multiXactOffsetPagePrecedes, 2, 96)).toBe(true)
    expect(slruMayDeleteSegment(multiXactOffsetPagePrecedes, 3, 96)).toBe(false)
  })

  it('sees through xid wraparound: the last pages of the xid space precede the first ones', () => {
    const lastClogPage = Math.floor(0xffffffff / CLOG_XACTS_PER_PAGE)
    expect(clogPagePrecedes(lastClogPage, 5)).toBe(true)
    expect(clogPagePrecedes(5, lastClogPage)).toBe(false)
    // A page half the xid space ahead is neither older nor newer in a usable way: never removed.
    const half = 2 ** 31 / CLOG_XACTS_PER_PAGE
    expect(clogPagePrecedes(0, half)).toBe(false)
  })

  it('wraps member segments after the last offset', () => {
    expect(mxOffsetToMemberSegment(0)).toBe(0)
    expect(mxOffsetToMemberSegment(MULTIXACT_MEMBERS_PER_PAGE * 32)).toBe(1)
    expect(MAX_MEMBER_SEGMENT).toBe(Math.floor(Math.floor(0xffffffff / 1636) / 32))
  })
})
