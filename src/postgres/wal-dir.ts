/**
 * A directory of WAL segment files (a pg_wal directory, or an archive) as a source for WalReader.
 */

import { closeSync, fstatSync, openSync, read } from 'node:fs'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import {
  formatLsn,
  isValidSegmentSize,
  type Lsn,
  pageStart,
  parseWalFileName,
  segmentNumber,
  segmentStart,
  walFileName,
} from './lsn.js'
import {
  checkPageHeader,
  decodePageHeader,
  SIZE_OF_XLOG_LONG_PHD,
  XLOG_PAGE_MAGIC,
  XLP_LONG_HEADER,
} from './wal-page.js'
import { WalReader } from './wal-reader.js'

export class WalDirError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalDirError'
}

export interface WalDir {
  dir: string
  timeline: number
  segmentSize: number
  systemId: bigint
  /** Segment numbers present for the timeline, ascending. */
  segments: number[]
}

/**
 * Finds the segment files of one timeline (the newest one present, unless given) and learns the segment
 * size and system identifier from the first segment's long page header.
 */
export async function scanWalDir(dir: string, timeline?: number, format?: WalFormat): Promise<WalDir> {
  let names: string[]
  try {
    const st = await stat(dir)
    if (!st.isDirectory()) throw new WalDirError(`${dir} is not a directory: --path takes a pg_wal directory`)
    names = await readdir(dir)
  } catch (err) {
    if (err instanceof WalDirError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new WalDirError(`WAL directory ${dir} does not exist`)
    throw new WalDirError(`cannot read WAL directory ${dir}: ${(err as Error).message}`)
  }
  const walNames = names.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()
  if (walNames.length === 0) {
    throw new WalDirError(`no WAL segment files (24 hex digits, e.g. 000000010000000000000001) in ${dir}`)
  }
  const tli = timeline ?? Math.max(...walNames.map((n) => Number.parseInt(n.slice(0, 8), 16)))
  const ofTli = walNames.filter((n) => Number.parseInt(n.slice(0, 8), 16) === tli)
  if (ofTli.length === 0) throw new WalDirError(`no WAL segment files of timeline ${tli} in ${dir}`)

  if (format !== undefined) {
    const segments = ofTli.map((n) => parseWalFileName(n, format.segmentSize)!.segNo)
    return { dir, timeline: tli, ...format, segments }
  }
  const first = join(dir, ofTli[0])
  const head = await readFileHead(first)
  const hdr = decodePageHeader(head)
  if (head.length < SIZE_OF_XLOG_LONG_PHD || hdr.magic !== XLOG_PAGE_MAGIC || !(hdr.info & XLP_LONG_HEADER)) {
    throw new WalDirError(
      `${first} is not a PostgreSQL 15 WAL segment: no valid long page header at offset 0`,
    )
  }
  const segmentSize = hdr.segmentSize ?? 0
  if (!isValidSegmentSize(segmentSize)) {
    throw new WalDirError(
      `${first} declares WAL segment size ${segmentSize}: valid sizes are powers of two from 1 MiB to 1 GiB`,
    )
  }
  const segments = ofTli.map((n) => parseWalFileName(n, segmentSize)!.segNo)
  return { dir, timeline: tli, segmentSize, systemId: hdr.systemId!, segments }
}

/**
 * What the segments are, when whoever wrote them knows (a safekeeper's control file): its first segment
 * may then begin where its timeline does, with no long page header at offset 0 to learn this from.
 */
export interface WalFormat {
  segmentSize: number
  systemId: bigint
}

export interface OpenWalDirOptions {
  /** First record to return: the first one starting at or after this LSN. Default: the oldest segment. */
  start?: Lsn
  /**
   * `start` is known to be a record boundary (a checkpoint's redo point, where a safekeeper's WAL
   * begins): decoding begins there instead of at its page, whose earlier bytes may not be WAL at all.
   */
  startIsRecord?: boolean
  end?: Lsn
  timeline?: number
  format?: WalFormat
}

export async function openWalDir(
  dir: string,
  opts: OpenWalDirOptions = {},
): Promise<{ wal: WalDir; reader: WalReader }> {
  const wal = await scanWalDir(dir, opts.timeline, opts.format)
  const start = opts.start ?? segmentStart(wal.segments[0], wal.segmentSize)
  const startSeg = segmentNumber(start, wal.segmentSize)
  if (!wal.segments.includes(startSeg)) {
    throw new WalDirError(
      `start ${formatLsn(start)} is in segment ${walFileName(wal.timeline, startSeg, wal.segmentSize)}, which is not in ${dir}` +
        ` (segments present: ${describeRange(wal)})`,
    )
  }
  if (opts.end !== undefined && opts.end <= start) {
    throw new WalDirError(`end ${formatLsn(opts.end)} is not after start ${formatLsn(start)}`)
  }
  // Otherwise decoding begins at the start's page, where record boundaries can be found, as pg_waldump does.
  const from = opts.startIsRecord ? start : pageStart(start)
  const reader = new WalReader(segmentChunks(wal, from), {
    startLsn: from,
    firstLsn: start,
    endLsn: opts.end,
    segmentSize: wal.segmentSize,
    timeline: wal.timeline,
    systemId: wal.systemId,
    describeEndOfInput: (lsn) => describeInputEnd(wal, lsn),
  })
  return { wal, reader }
}

/** Yields segment contents from `from` on, reading the next file while the current one is decoded. */
async function* segmentChunks(wal: WalDir, from: Lsn): AsyncGenerator<Buffer> {
  let segNo = segmentNumber(from, wal.segmentSize)
  let offset = from % wal.segmentSize
  let pending = readSegment(wal, segNo)
  for (;;) {
    const data = await pending
    if (data === null) return
    pending = data.length === wal.segmentSize ? readSegment(wal, segNo + 1) : Promise.resolve(null)
    yield offset === 0 ? data : data.subarray(offset)
    offset = 0
    segNo++
  }
}

/**
 * Reads a whole segment. Opening is synchronous so that the read itself is already running in libuv's
 * thread pool while the previous segment is decoded: an awaited open would not even start until the
 * decoder next yields to the event loop.
 */
function readSegment(wal: WalDir, segNo: number): Promise<Buffer | null> {
  const path = join(wal.dir, walFileName(wal.timeline, segNo, wal.segmentSize))
  let fd: number
  let size: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(null)
    return Promise.reject(new WalDirError(`cannot read ${path}: ${(err as Error).message}`))
  }
  try {
    size = Math.min(fstatSync(fd).size, wal.segmentSize)
  } catch (err) {
    closeSync(fd)
    return Promise.reject(new WalDirError(`cannot read ${path}: ${(err as Error).message}`))
  }
  const data = Buffer.allocUnsafe(size)
  return new Promise((resolve, reject) => {
    const step = (got: number) => {
      if (got >= size) {
        closeSync(fd)
        resolve(data)
        return
      }
      read(fd, data, got, size - got, got, (err, n) => {
        if (err) {
          closeSync(fd)
          reject(new WalDirError(`cannot read ${path}: ${err.message}`))
        } else if (n === 0) {
          closeSync(fd)
          resolve(data.subarray(0, got))
        } else {
          step(got + n)
        }
      })
    }
    step(0)
  })
}

function describeInputEnd(wal: WalDir, lsn: Lsn): string {
  const segNo = segmentNumber(lsn, wal.segmentSize)
  const name = walFileName(wal.timeline, segNo, wal.segmentSize)
  if (lsn % wal.segmentSize === 0) return `WAL segment ${name} (from ${formatLsn(lsn)}) is not in ${wal.dir}`
  return `WAL segment ${name} is truncated at offset ${lsn % wal.segmentSize}`
}

function describeRange(wal: WalDir): string {
  const name = (s: number) => walFileName(wal.timeline, s, wal.segmentSize)
  const first = wal.segments[0]
  const last = wal.segments[wal.segments.length - 1]
  return first === last ? name(first) : `${name(first)} .. ${name(last)}`
}

/**
 * True when a later segment holds valid WAL for its position, which means a stop at `lsn` was damage in
 * the middle of the WAL rather than its end. Recycled segments carry stale page addresses and do not count.
 */
export async function walContinuesAfter(wal: WalDir, lsn: Lsn): Promise<boolean> {
  const segNo = segmentNumber(lsn, wal.segmentSize)
  for (const later of wal.segments) {
    if (later <= segNo) continue
    const data = await readFileHead(join(wal.dir, walFileName(wal.timeline, later, wal.segmentSize)))
    if (data.length < SIZE_OF_XLOG_LONG_PHD) continue
    const reason = checkPageHeader(decodePageHeader(data), segmentStart(later, wal.segmentSize), {
      segmentSize: wal.segmentSize,
      timeline: wal.timeline,
      lastTimeline: 0,
      systemId: wal.systemId,
    })
    if (reason === null) return true
  }
  return false
}

async function readFileHead(path: string): Promise<Buffer> {
  const head = Buffer.alloc(SIZE_OF_XLOG_LONG_PHD)
  const fh = await open(path, 'r')
  try {
    const { bytesRead } = await fh.read(head, 0, SIZE_OF_XLOG_LONG_PHD, 0)
    return head.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}
