import { describe, expect, it } from 'vitest'
import {
  BLCKSZ,
  getPageLsn,
  isNewPage,
  LP_DEAD,
  LP_NORMAL,
  LP_UNUSED,
  lineCount,
  PageFormatError,
  type PageHeader,
  PD_ALL_VISIBLE,
  PD_PAGE_FULL,
  PG_PAGE_LAYOUT_VERSION,
  readItemId,
  readPageHeader,
  SIZE_OF_PAGE_HEADER_DATA,
  setPageLsn,
  writePageHeader,
} from '../../src/postgres/data-page.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { pageChecksum, setPageChecksum } from '../../src/postgres/page-checksum.js'

const header: PageHeader = {
  lsn: parseLsn('1A/2B3C4D5E'),
  checksum: 0xbeef,
  flags: PD_ALL_VISIBLE | PD_PAGE_FULL,
  lower: SIZE_OF_PAGE_HEADER_DATA + 3 * 4,
  upper: 8000,
  special: BLCKSZ,
  pageSize: BLCKSZ,
  layoutVersion: PG_PAGE_LAYOUT_VERSION,
  pruneXid: 0xdeadbeef,
}

function samplePage(): Buffer {
  const page = Buffer.alloc(BLCKSZ)
  writePageHeader(page, header)
  page.writeUInt32LE(8000 | (LP_NORMAL << 15) | (48 << 17), 24)
  page.writeUInt32LE(0, 28)
  page.writeUInt32LE(8048 | (LP_DEAD << 15) | (144 << 17), 32)
  for (let i = 8000; i < BLCKSZ; i++) page[i] = (i * 31) & 0xff
  return page
}

describe('PageHeaderData', () => {
  it('round-trips every field', () => {
    const page = samplePage()
    expect(readPageHeader(page)).toEqual(header)
    const copy = Buffer.alloc(BLCKSZ)
    writePageHeader(copy, readPageHeader(page))
    expect(copy.subarray(0, SIZE_OF_PAGE_HEADER_DATA)).toEqual(page.subarray(0, SIZE_OF_PAGE_HEADER_DATA))
  })

  it('lays the header out as Postgres does', () => {
    const bytes = samplePage().subarray(0, SIZE_OF_PAGE_HEADER_DATA)
    expect(bytes.toString('hex')).toBe(
      [
        '1a000000', // pd_lsn.xlogid: the high half comes first
        '5e4d3c2b', // pd_lsn.xrecoff
        'efbe', // pd_checksum
        '0600', // pd_flags
        '2400', // pd_lower
        '401f', // pd_upper
        '0020', // pd_special
        '0420', // pd_pagesize_version = 8192 | 4
        'efbeadde', // pd_prune_xid
      ].join(''),
    )
  })

  it('stores pd_lsn as two uint32 halves, high half first', () => {
    const page = Buffer.alloc(BLCKSZ)
    setPageLsn(page, parseLsn('1/2345678'))
    expect(page.subarray(0, 8).toString('hex')).toBe('0100000078563402')
    expect(getPageLsn(page)).toBe(parseLsn('1/2345678'))
    setPageLsn(page, Number.MAX_SAFE_INTEGER)
    expect(getPageLsn(page)).toBe(Number.MAX_SAFE_INTEGER)
    page.writeUInt32LE(0x20_0000, 0)
    expect(() => getPageLsn(page)).toThrow(/above 2\^53/)
  })

  it('treats pd_upper == 0 as a new page', () => {
    expect(isNewPage(Buffer.alloc(BLCKSZ))).toBe(true)
    expect(isNewPage(samplePage())).toBe(false)
  })

  it('refuses buffers shorter than the header and mismatched pagesize/version', () => {
    expect(() => readPageHeader(Buffer.alloc(10))).toThrow(PageFormatError)
    expect(() => writePageHeader(Buffer.alloc(BLCKSZ), { ...header, pageSize: 8191 })).toThrow(
      PageFormatError,
    )
  })
})

describe('line pointers', () => {
  it('decodes lp_off, lp_flags and lp_len with 1-based offset numbers', () => {
    const page = samplePage()
    expect(lineCount(page)).toBe(3)
    expect(readItemId(page, 1)).toEqual({ offset: 8000, flags: LP_NORMAL, length: 48 })
    expect(readItemId(page, 2)).toEqual({ offset: 0, flags: LP_UNUSED, length: 0 })
    expect(readItemId(page, 3)).toEqual({ offset: 8048, flags: LP_DEAD, length: 144 })
    expect(() => readItemId(page, 0)).toThrow(/out of range/)
    expect(() => readItemId(page, 4)).toThrow(/the page has 3/)
    expect(lineCount(Buffer.alloc(BLCKSZ))).toBe(0)
  })
})

describe('pageChecksum', () => {
  it('ignores the stored checksum, depends on the block number and never returns 0', () => {
    const page = samplePage()
    const sum = pageChecksum(page, 0)
    expect(sum).toBeGreaterThanOrEqual(1)
    expect(sum).toBeLessThanOrEqual(65535)
    page.writeUInt16LE(0x1234, 8)
    expect(pageChecksum(page, 0)).toBe(sum)
    expect(pageChecksum(page, 1)).not.toBe(sum)
    expect(setPageChecksum(page, 0)).toBe(sum)
    expect(readPageHeader(page).checksum).toBe(sum)
  })

  it('gives the same answer for unaligned buffers and notices any flipped bit outside pd_checksum', () => {
    const page = samplePage()
    const sum = pageChecksum(page, 7)
    const unaligned = Buffer.alloc(BLCKSZ + 1).subarray(1)
    page.copy(unaligned)
    expect(unaligned.byteOffset % 4).not.toBe(0)
    expect(pageChecksum(unaligned, 7)).toBe(sum)
    for (const offset of [0, 10, 11, 100, 4096, BLCKSZ - 1]) {
      const flipped = Buffer.from(page)
      flipped[offset] ^= 0x80
      expect(pageChecksum(flipped, 7)).not.toBe(sum)
    }
    expect(() => pageChecksum(page.subarray(0, 100), 0)).toThrow(RangeError)
  })
})
