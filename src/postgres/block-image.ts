/**
 * Turns a block image stored in a WAL record back into the 8 KiB page: decompress (pglz, lz4 or zstd,
 * as `wal_compression` chose) and put the hole — the unused gap between pd_lower and pd_upper that
 * Postgres leaves out — back as zeros.
 */

import { decompress as zstdDecompress } from 'fzstd'
import { uncompressSync as lz4UncompressSized } from 'lz4-napi'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { arenaBuffer } from './buffer-arena.js'
import { BLCKSZ, isNewPage, setPageLsn } from './data-page.js'
import { formatLsn } from './lsn.js'
import { pglzDecompress } from './pglz.js'
import type { BlockImage, BlockRef, DecodedRecord } from './xlog-record.js'

export class BlockImageError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'BlockImageError'
}

/** The page bytes the image stands for, with the hole zero-filled; pd_lsn is as Postgres copied it. */
export function restoreBlockImage(img: BlockImage): Buffer {
  const stored = BLCKSZ - img.holeLength
  let body: Uint8Array
  switch (img.compression) {
    case 'none':
      body = img.data
      break
    case 'pglz':
      body = pglzDecompress(img.data, stored)
      break
    case 'lz4':
      body = lz4Decompress(img.data, stored)
      break
    case 'zstd':
      body = zstdDecompressExact(img.data, stored)
      break
  }
  if (body.length !== stored) {
    throw new BlockImageError(
      `${img.compression} image decompressed to ${body.length} bytes, expected ${stored}`,
    )
  }
  const page = arenaBuffer(BLCKSZ)
  page.set(body.subarray(0, img.holeOffset), 0)
  page.fill(0, img.holeOffset, img.holeOffset + img.holeLength)
  page.set(body.subarray(img.holeOffset), img.holeOffset + img.holeLength)
  return page
}

/**
 * The page as it stands after the record: the image was copied before Postgres stamped the page, so
 * pd_lsn is set to the record's end, as redo would (an all-zero new page keeps its zero LSN).
 */
export function pageAfterRecord(rec: DecodedRecord, block: BlockRef): Buffer {
  if (!block.image) {
    throw new BlockImageError(`block ${block.id} of the record at ${formatLsn(rec.lsn)} carries no image`)
  }
  const page = restoreBlockImage(block.image)
  if (!isNewPage(page)) setPageLsn(page, rec.endLsn)
  return page
}

/** Postgres stores raw LZ4 blocks; lz4-napi reads blocks prefixed with their decompressed size. */
function lz4Decompress(data: Buffer, size: number): Buffer {
  const sized = Buffer.allocUnsafe(4 + data.length)
  sized.writeUInt32LE(size, 0)
  data.copy(sized, 4)
  try {
    return lz4UncompressSized(sized)
  } catch (err) {
    throw new BlockImageError(`corrupt lz4 block image: ${(err as Error).message}`)
  }
}

function zstdDecompressExact(data: Buffer, size: number): Uint8Array {
  try {
    return zstdDecompress(data, new Uint8Array(size))
  } catch (err) {
    throw new BlockImageError(`corrupt zstd block image: ${(err as Error).message}`)
  }
}
