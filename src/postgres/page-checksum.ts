/**
 * Data page checksums (PG15 `pg_checksum_page`), present when the cluster was initialised with
 * `--data-checksums` (pg_control data_checksum_version = 1).
 *
 * The page is read as 64 rows of 32 uint32 words (native byte order, little-endian here). Each of the 32
 * columns is an independent FNV-1a-style hash that starts from its own base offset and folds in its 64
 * words; two extra rounds with zero spread the last word's bits, the 32 column hashes are xor-ed together,
 * the block number is xor-ed in so that a page copied to the wrong place fails, and the result is reduced
 * to 1..65535 so that a valid checksum is never zero. The pd_checksum field counts as zero while hashing.
 *
 * Postgres computes the columns side by side for SIMD; the columns are independent, so we hash one column
 * at a time and keep its state in a local, which V8 compiles to a tight integer loop.
 */
import { BLCKSZ } from './data-page.js'

const N_SUMS = 32
const FNV_PRIME = 16777619
const WORDS_PER_PAGE = BLCKSZ / 4

/** Starting value of each column's hash (Postgres' checksumBaseOffsets, random constants). */
const BASE_OFFSETS = new Uint32Array([
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c, 0xf8d4474f,
  0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb, 0xe58f764b, 0x187636bc,
  0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4, 0x783125bb, 0x6ca8eaa2, 0xe407eac6,
  0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
])

/** pd_checksum is bytes 8-9, the low half of word 2 on a little-endian machine. */
const CHECKSUM_WORD = 2
const CHECKSUM_WORD_MASK = 0xffff0000

const PD_CHECKSUM_OFFSET = 8

/** Unaligned pages are copied here first, because a Uint32Array view needs a 4-byte aligned offset. */
const scratch = new Uint32Array(WORDS_PER_PAGE)
const scratchBytes = new Uint8Array(scratch.buffer)

function pageWords(page: Buffer): Uint32Array {
  if (page.length < BLCKSZ) throw new RangeError(`a data page is ${BLCKSZ} bytes, got ${page.length}`)
  if (page.byteOffset % 4 === 0) return new Uint32Array(page.buffer, page.byteOffset, WORDS_PER_PAGE)
  scratchBytes.set(page.subarray(0, BLCKSZ))
  return scratch
}

function hashColumn(words: Uint32Array, column: number, first: number): number {
  let tmp = BASE_OFFSETS[column] ^ first
  let sum = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17)
  for (let i = column + N_SUMS; i < WORDS_PER_PAGE; i += N_SUMS) {
    tmp = sum ^ words[i]
    sum = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17)
  }
  for (let round = 0; round < 2; round++) {
    tmp = sum
    sum = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17)
  }
  return sum
}

/**
 * The checksum Postgres expects in pd_checksum of block `blkno` of its relation fork (the block number
 * counts from the start of the fork, across 1 GiB segment files). Whatever pd_checksum holds is ignored.
 * Postgres never checksums new (all-zero) pages; for those the value is meaningless.
 */
export function pageChecksum(page: Buffer, blkno: number): number {
  const words = pageWords(page)
  let folded = 0
  for (let column = 0; column < N_SUMS; column++) {
    const first = column === CHECKSUM_WORD ? words[column] & CHECKSUM_WORD_MASK : words[column]
    folded ^= hashColumn(words, column, first)
  }
  return (((folded ^ blkno) >>> 0) % 65535) + 1
}

/** Recomputes and stores pd_checksum, e.g. after changing pd_lsn; returns the new checksum. */
export function setPageChecksum(page: Buffer, blkno: number): number {
  const checksum = pageChecksum(page, blkno)
  page.writeUInt16LE(checksum, PD_CHECKSUM_OFFSET)
  return checksum
}
