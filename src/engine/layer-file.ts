/**
 * Layer files: immutable, sorted runs of (key, lsn, value, willInit) entries, the unit in which the engine
 * stores, compacts and garbage-collects data. docs/storage-format.md describes format version 2 byte by
 * byte; in short:
 *
 *   block 0                 header (magic, version, kind, ids, ranges, counts, where each index level is)
 *   blocks 1 .. D           the value stream: the values back to back; one of at most 8 KiB never straddles
 *                           two blocks, and a page image is stored bare, so a page is exactly one block
 *   blocks D+1 .. end       the index, a B-tree stored level by level: all leaves, then level 1, ... the root
 *
 * Every block is 8 KiB. The header and index blocks hold 8188 bytes of payload and a CRC-32C of them,
 * seeded with the block number so that a block written at the wrong place fails too. Data blocks carry no
 * CRC of their own: each value's CRC-32C is in its leaf entry and is checked when the value is read (for a
 * page that fills its block, once per load into the cache). Nothing that fails a check reaches a caller.
 *
 * Index entries are fixed-width: the search key (the 18-byte key, plus the LSN as a big-endian u64 in a
 * delta layer), then in a leaf the value's offset in the stream, its stored length, flags (willInit, lz4,
 * image) and CRC, and in an internal node the child's ordinal within its level. Leaves are contiguous and
 * in order, so scans and the newest-first walk of `visit` step to the neighbouring block instead of
 * climbing the tree again. Values may be lz4-compressed one by one; the default is no compression.
 *
 * Reads are synchronous preads through the PageCache (docs/storage-format.md, "Memory and the page cache",
 * says why).
 */

import { closeSync, fstatSync, fsyncSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import { compressSync, uncompressSync } from 'lz4-napi'
import { commitTempFile, commitTempFileOffThread, fsyncOffThread, TEMP_SUFFIX } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { idBytes, idFromBytes, parseId } from '../lib/ids.js'
import { arenaBuffer } from '../postgres/buffer-arena.js'
import { crc32c } from '../postgres/crc32c.js'
import { KEY_SIZE, type KeyRange, keyToHex } from './key.js'
import { checkLayerDesc, formatLayerName, type LayerDesc, type LayerKind } from './layer-name.js'
import { MAX_BLOCKS_PER_FILE, PAGE_SIZE, type PageCache } from './page-cache.js'

export type LayerCompression = 'none' | 'lz4'

export interface LayerSummary extends LayerDesc {
  tenantId: string
  timelineId: string
  entries: number
  /** Distinct keys. */
  keys: number
  /** Sum of the values' lengths as added. */
  valueBytes: number
  /** What the values take in the file after compression. */
  storedValueBytes: number
  fileSize: number
  compression: LayerCompression
}

export interface LayerEntry {
  key: Buffer
  lsn: number
  value: Buffer
  willInit: boolean
  /** Added as a page image (the caller's own tag, kept in the index so that a page stays 8 KiB). */
  image: boolean
}

/** How a file is laid out, beyond its summary: what `zenith layer dump` shows of the format. */
export interface LayerLayout {
  formatVersion: number
  blockSize: number
  blocks: number
  dataBlocks: number
  indexBlocks: number
  /** Levels of the B-tree index, 0 for a layer without entries. */
  indexHeight: number
}

/** An entry as the index describes it, without its value. */
export interface LayerIndexEntry {
  key: Buffer
  lsn: number
  willInit: boolean
  image: boolean
  /** Bytes the value takes in the file (after compression, when it is lz4). */
  storedSize: number
  lz4: boolean
}

export type LayerVisitor = (lsn: number, value: Buffer, willInit: boolean, image: boolean) => boolean

export class LayerCorruptionError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'LayerCorruptionError'
  constructor(
    readonly file: string,
    /** Byte offset of the bad block (or of the first missing byte when the file is too short). */
    readonly offset: number,
    detail: string,
  ) {
    super(`layer file ${file}: ${detail}`)
  }
}

/** Misuse of a writer: entries out of order or out of range, writing after finish. */
export class LayerWriteError extends ZenithError {
  static override kind: ErrorKind = 'bug'
  override name = 'LayerWriteError'
}

const BLOCK = PAGE_SIZE
const PAYLOAD = BLOCK - 4
const MAGIC = 0x5a4c4159 // 'ZLAY'
const FORMAT_VERSION = 2
const KIND_CODE: Record<LayerKind, number> = { delta: 1, image: 2 }
const COMPRESSION_CODE: Record<LayerCompression, number> = { none: 0, lz4: 1 }
/** Generous: with fan-outs above 200, four levels index the largest file the page cache can address. */
const MAX_HEIGHT = 8
const TWO_32 = 0x1_0000_0000

/** Header field offsets in block 0; the doc's table mirrors this. */
const H = {
  magic: 0,
  version: 4,
  kind: 6,
  compression: 7,
  tenantId: 8,
  timelineId: 24,
  keyStart: 40,
  keyEnd: 58,
  lsnStart: 76,
  lsnEnd: 84,
  entries: 92,
  keys: 100,
  valueBytes: 108,
  storedValueBytes: 116,
  blockCount: 124,
  dataBlocks: 128,
  indexBlocks: 132,
  keyWidth: 136,
  height: 137,
  levelStarts: 140,
  levelCounts: 140 + 4 * MAX_HEIGHT,
} as const

/** Index nodes: level u8, a zero byte, entry count u16, then the entries. */
const NODE_HEADER = 4
/** Leaf entry after the search key: value offset in the stream u40, stored length u32, flags u8, CRC-32C u32. */
const LEAF_TAIL = 14
/** Internal entry after the search key (the child's first key): the child's ordinal in its level, u32. */
const INTERNAL_TAIL = 4
const FLAG_WILL_INIT = 1
const FLAG_LZ4 = 2
/** The value is a page image, stored bare so that a page fills exactly one data block. */
const FLAG_IMAGE = 4

/**
 * Smaller values (most WAL records) are stored as they are: they seldom shrink by much, and a native
 * decompression call costs more read time than the few bytes would save.
 */
const MIN_COMPRESS = 512
const MAX_VALUE = 0xffff_ffff
const WRITE_BATCH_BLOCKS = 64

/**
 * lz4 shrinks real Postgres pages 1.4x (random-looking text) to 8x (pgbench accounts), about 4x over a
 * whole database, but decompressing an 8 KiB page through lz4-napi costs ~6.5 µs, which halves the rate of
 * cached page lookups (docs/storage-format.md has the figures). Lookup speed is the target, disk is cheap.
 */
const DEFAULT_COMPRESSION: LayerCompression = 'none'

function keyWidthOf(kind: LayerKind): number {
  return kind === 'delta' ? KEY_SIZE + 8 : KEY_SIZE
}

function capacity(entrySize: number): number {
  return Math.floor((PAYLOAD - NODE_HEADER) / entrySize)
}

function writeU64(buf: Buffer, off: number, v: number): void {
  const hi = Math.floor(v / TWO_32)
  buf.writeUInt32BE(hi, off)
  buf.writeUInt32BE(v - hi * TWO_32, off + 4)
}

/** -1 when the value does not fit in 2^53. */
function readU64(buf: Buffer, off: number): number {
  const hi = buf.readUInt32BE(off)
  return hi < 0x20_0000 ? hi * TWO_32 + buf.readUInt32BE(off + 4) : -1
}

function sealBlock(block: Buffer, blockNo: number): void {
  block.writeUInt32BE(crc32c(block.subarray(0, PAYLOAD), blockNo), PAYLOAD)
}

function blockIsSound(block: Buffer, blockNo: number): boolean {
  return block.readUInt32BE(PAYLOAD) === crc32c(block.subarray(0, PAYLOAD), blockNo)
}

/** Compares `width` bytes of `buf` at `off` with `target`; a byte loop beats Buffer.compare's call overhead. */
function compareAt(buf: Buffer, off: number, target: Buffer, width: number): number {
  for (let i = 0; i < width; i++) {
    const d = buf[off + i] - target[i]
    if (d !== 0) return d
  }
  return 0
}

function searchKey(width: number, key: Buffer, lsn: number): Buffer {
  const k = Buffer.alloc(width)
  key.copy(k, 0)
  if (width > KEY_SIZE) writeU64(k, KEY_SIZE, lsn)
  return k
}

interface IndexLevel {
  sealed: Buffer[]
  open: Buffer
  count: number
}

export interface LayerFileWriterOptions {
  dir: string
  kind: LayerKind
  tenantId: string
  timelineId: string
  keyStart: Buffer
  keyEnd: Buffer
  lsnStart: number
  /** Exclusive; lsnStart + 1 for an image layer. */
  lsnEnd: number
  compression?: LayerCompression
}

/**
 * Writes one layer file. Values go to disk as they are added; the index (about 36 bytes an entry) stays in
 * memory until `finish`, which appends it, writes the header, fsyncs and renames the file into place.
 */
export class LayerFileWriter {
  private readonly desc: LayerDesc
  private readonly tenantId: string
  private readonly timelineId: string
  private readonly compression: LayerCompression
  private readonly dir: string
  private readonly tempPath: string
  private fd: number
  private state: 'open' | 'sealed' | 'finished' | 'aborted' = 'open'

  private readonly width: number
  private readonly leafEntrySize: number
  private readonly internalEntrySize: number
  private readonly levels: IndexLevel[] = []

  /** Blocks waiting to be written; the value stream is written straight into them. */
  private readonly batch = Buffer.allocUnsafe(WRITE_BATCH_BLOCKS * BLOCK)
  private batchBlocks = 0
  private batchFirstBlock = 1
  /** Bytes of the value stream in the block being filled. */
  private blockFill = 0
  private streamBytes = 0

  private prevKey: Buffer | null = null
  private prevLsn = -1
  private entries = 0
  private keys = 0
  private valueBytes = 0

  constructor(opts: LayerFileWriterOptions) {
    this.desc = {
      kind: opts.kind,
      keyStart: Buffer.from(opts.keyStart),
      keyEnd: Buffer.from(opts.keyEnd),
      lsnStart: opts.lsnStart,
      lsnEnd: opts.lsnEnd,
    }
    const bad = checkLayerDesc(this.desc)
    if (bad) throw new LayerWriteError(`cannot write a layer: ${bad}`)
    this.tenantId = parseId(opts.tenantId, 'tenant')
    this.timelineId = parseId(opts.timelineId, 'timeline')
    this.compression = opts.compression ?? DEFAULT_COMPRESSION
    if (!Object.hasOwn(COMPRESSION_CODE, this.compression)) {
      throw new LayerWriteError(`unknown layer compression "${this.compression}": use none or lz4`)
    }
    this.width = keyWidthOf(opts.kind)
    this.leafEntrySize = this.width + LEAF_TAIL
    this.internalEntrySize = this.width + INTERNAL_TAIL
    this.dir = opts.dir
    // Named after the layer as first described; finish may still narrow the key range and so the name.
    this.tempPath = path.join(opts.dir, formatLayerName(this.desc)) + TEMP_SUFFIX
    this.fd = openSync(this.tempPath, 'w', 0o644)
  }

  /** The file's size if it were finished now: lets callers cut layers at a target size. */
  get bytesWritten(): number {
    // batchFirstBlock counts the header block and every block already written.
    let blocks = this.batchFirstBlock + this.batchBlocks + (this.blockFill > 0 ? 1 : 0)
    for (const l of this.levels) blocks += l.sealed.length + (l.count > 0 ? 1 : 0)
    return blocks * BLOCK
  }

  /**
   * Appends an entry. (key, lsn) must increase strictly; an image layer takes one entry per key, at its
   * LSN. The value is copied (or compressed) before add returns.
   */
  add(key: Buffer, lsn: number, value: Buffer, willInit: boolean, image = false): void {
    this.mustBeOpen()
    const d = this.desc
    if (key.length !== KEY_SIZE) throw new LayerWriteError(`a key is ${KEY_SIZE} bytes, got ${key.length}`)
    if (Buffer.compare(key, d.keyStart) < 0 || Buffer.compare(key, d.keyEnd) >= 0) {
      throw new LayerWriteError(
        `key ${keyToHex(key)} is outside the layer's key range ${keyToHex(d.keyStart)}..${keyToHex(d.keyEnd)}`,
      )
    }
    if (!Number.isSafeInteger(lsn) || lsn < d.lsnStart || lsn >= d.lsnEnd) {
      throw new LayerWriteError(`LSN ${lsn} is outside the layer's LSN range ${d.lsnStart}..${d.lsnEnd}`)
    }
    if (value.length > MAX_VALUE) throw new LayerWriteError(`a value of ${value.length} bytes is too large`)
    const newKey = this.prevKey === null || Buffer.compare(key, this.prevKey) > 0
    if (!newKey && (d.kind === 'image' || Buffer.compare(key, this.prevKey!) < 0 || lsn <= this.prevLsn)) {
      throw new LayerWriteError(
        `entries must be added in increasing (key, lsn) order${d.kind === 'image' ? ', one per key' : ''}: ` +
          `${keyToHex(key)}@${lsn} after ${keyToHex(this.prevKey!)}@${this.prevLsn}`,
      )
    }

    let stored = value
    let flags = (willInit ? FLAG_WILL_INIT : 0) | (image ? FLAG_IMAGE : 0)
    if (this.compression === 'lz4' && value.length >= MIN_COMPRESS) {
      const c = compressSync(value)
      if (c.length < value.length) {
        stored = c
        flags |= FLAG_LZ4
      }
    }
    // The index grows by at most one node per level with this entry.
    const blocksAfter = this.bytesWritten / BLOCK + Math.ceil(stored.length / BLOCK) + 1 + MAX_HEIGHT
    if (blocksAfter > MAX_BLOCKS_PER_FILE) {
      throw new LayerWriteError(`layer file would outgrow ${MAX_BLOCKS_PER_FILE} blocks; cut it earlier`)
    }
    try {
      // A value that fits in a block but would straddle two starts a block of its own: one page, one read.
      if (stored.length <= BLOCK && this.blockFill > 0 && this.blockFill + stored.length > BLOCK) {
        this.currentBlock().fill(0, this.blockFill, BLOCK)
        this.streamBytes += BLOCK - this.blockFill
        this.finishDataBlock()
      }
      const offset = this.streamBytes
      this.appendToStream(stored)
      this.addLeafEntry(key, lsn, offset, stored.length, flags, crc32c(stored))
    } catch (err) {
      // A failed write leaves the stream and the index out of step: this file can only be thrown away.
      this.abort()
      throw err
    }

    if (newKey) {
      this.keys++
      this.prevKey = Buffer.from(key)
    }
    this.prevLsn = lsn
    this.entries++
    this.valueBytes += value.length
  }

  /**
   * Completes the file durably under its layer name. `keyEnd` replaces the key range's end, for a writer
   * that learns where its layer stops only when the next key arrives (compaction cutting layers by size);
   * it must lie above every key added. The fsyncs block the thread: for a worker's writer, where nothing
   * else waits on it.
   */
  finish(opts: { keyEnd?: Buffer } = {}): { path: string; summary: LayerSummary } {
    const r = this.seal(opts)
    try {
      fsyncSync(this.fd)
      closeSync(this.fd)
      this.fd = -1
      commitTempFile(this.tempPath, r.path)
    } catch (err) {
      this.abort()
      throw err
    }
    this.state = 'finished'
    return r
  }

  /**
   * finish for a writer on the main thread: the fsyncs of the file and its directory run in the thread
   * pool, since one of a large layer can take hundreds of milliseconds that page reads would wait.
   */
  async finishOffThread(opts: { keyEnd?: Buffer } = {}): Promise<{ path: string; summary: LayerSummary }> {
    const r = this.seal(opts)
    try {
      await fsyncOffThread(this.fd)
      closeSync(this.fd)
      this.fd = -1
      await commitTempFileOffThread(this.tempPath, r.path)
    } catch (err) {
      this.abort()
      throw err
    }
    this.state = 'finished'
    return r
  }

  /** Writes what is left, the index and the header; the file is complete but not yet durable. */
  private seal(opts: { keyEnd?: Buffer }): { path: string; summary: LayerSummary } {
    this.mustBeOpen()
    if (opts.keyEnd !== undefined) {
      const end = opts.keyEnd
      const floor = this.prevKey ?? this.desc.keyStart
      if (end.length !== KEY_SIZE || Buffer.compare(end, floor) <= 0) {
        throw new LayerWriteError(
          `key range end ${end.toString('hex').toUpperCase()} must lie above ${keyToHex(floor)}, ` +
            `the ${this.prevKey ? 'last key added' : 'start of the range'}`,
        )
      }
      this.desc.keyEnd = Buffer.from(end)
    }
    try {
      const r = this.complete()
      this.state = 'sealed'
      return r
    } catch (err) {
      this.abort()
      throw err
    }
  }

  /** Gives up: closes and removes the temp file. Safe to call more than once, and after finish (no-op). */
  abort(): void {
    if (this.state !== 'open' && this.state !== 'sealed') return
    this.state = 'aborted'
    try {
      if (this.fd >= 0) closeSync(this.fd)
    } finally {
      this.fd = -1
      rmSync(this.tempPath, { force: true })
    }
  }

  private mustBeOpen(): void {
    if (this.state !== 'open') throw new LayerWriteError(`layer writer ${this.tempPath} is ${this.state}`)
  }

  /** The index and header written after the data: everything but durability. */
  private complete(): { path: string; summary: LayerSummary } {
    if (this.blockFill > 0) {
      this.currentBlock().fill(0, this.blockFill, BLOCK)
      this.finishDataBlock()
    }
    const dataBlocks = this.batchFirstBlock - 1 + this.batchBlocks
    const { starts, counts } = this.finishIndex(1 + dataBlocks)
    for (const level of this.levels) {
      for (const node of level.sealed) {
        node.copy(this.currentBlock())
        this.sealCurrentBlock()
      }
    }
    // The nodes now count among the blocks written; dropping them keeps bytesWritten the file's size.
    this.levels.length = 0
    this.flushBatch()
    const blockCount = this.batchFirstBlock
    const indexBlocks = blockCount - 1 - dataBlocks

    const header = Buffer.alloc(BLOCK)
    const d = this.desc
    header.writeUInt32BE(MAGIC, H.magic)
    header.writeUInt16BE(FORMAT_VERSION, H.version)
    header[H.kind] = KIND_CODE[d.kind]
    header[H.compression] = COMPRESSION_CODE[this.compression]
    idBytes(this.tenantId).copy(header, H.tenantId)
    idBytes(this.timelineId).copy(header, H.timelineId)
    d.keyStart.copy(header, H.keyStart)
    d.keyEnd.copy(header, H.keyEnd)
    writeU64(header, H.lsnStart, d.lsnStart)
    writeU64(header, H.lsnEnd, d.lsnEnd)
    writeU64(header, H.entries, this.entries)
    writeU64(header, H.keys, this.keys)
    writeU64(header, H.valueBytes, this.valueBytes)
    writeU64(header, H.storedValueBytes, this.streamBytes)
    header.writeUInt32BE(blockCount, H.blockCount)
    header.writeUInt32BE(dataBlocks, H.dataBlocks)
    header.writeUInt32BE(indexBlocks, H.indexBlocks)
    header[H.keyWidth] = this.width
    header[H.height] = starts.length
    for (let i = 0; i < starts.length; i++) {
      header.writeUInt32BE(starts[i], H.levelStarts + 4 * i)
      header.writeUInt32BE(counts[i], H.levelCounts + 4 * i)
    }
    sealBlock(header, 0)
    writeSync(this.fd, header, 0, BLOCK, 0)
    return {
      path: path.join(this.dir, formatLayerName(d)),
      summary: {
        ...d,
        keyStart: Buffer.from(d.keyStart),
        keyEnd: Buffer.from(d.keyEnd),
        tenantId: this.tenantId,
        timelineId: this.timelineId,
        entries: this.entries,
        keys: this.keys,
        valueBytes: this.valueBytes,
        storedValueBytes: this.streamBytes,
        fileSize: blockCount * BLOCK,
        compression: this.compression,
      },
    }
  }

  private currentBlock(): Buffer {
    const off = this.batchBlocks * BLOCK
    return this.batch.subarray(off, off + BLOCK)
  }

  private sealCurrentBlock(): void {
    sealBlock(this.currentBlock(), this.batchFirstBlock + this.batchBlocks)
    this.finishDataBlock()
  }

  /** Data blocks carry no CRC of their own: each value's CRC is in its index entry. */
  private finishDataBlock(): void {
    this.batchBlocks++
    this.blockFill = 0
    if (this.batchBlocks === WRITE_BATCH_BLOCKS) this.flushBatch()
  }

  private flushBatch(): void {
    const len = this.batchBlocks * BLOCK
    let done = 0
    while (done < len) {
      done += writeSync(this.fd, this.batch, done, len - done, this.batchFirstBlock * BLOCK + done)
    }
    this.batchFirstBlock += this.batchBlocks
    this.batchBlocks = 0
  }

  private appendToStream(bytes: Buffer): void {
    let done = 0
    while (done < bytes.length) {
      const n = Math.min(BLOCK - this.blockFill, bytes.length - done)
      bytes.copy(this.batch, this.batchBlocks * BLOCK + this.blockFill, done, done + n)
      this.blockFill += n
      done += n
      if (this.blockFill === BLOCK) this.finishDataBlock()
    }
    this.streamBytes += bytes.length
  }

  private level(n: number): IndexLevel {
    if (n === this.levels.length) {
      if (n === MAX_HEIGHT) throw new LayerWriteError(`layer index would be deeper than ${MAX_HEIGHT} levels`)
      this.levels.push({ sealed: [], open: Buffer.alloc(BLOCK), count: 0 })
    }
    return this.levels[n]
  }

  private addLeafEntry(
    key: Buffer,
    lsn: number,
    offset: number,
    length: number,
    flags: number,
    crc: number,
  ): void {
    const leaf = this.slotFor(0, this.leafEntrySize)
    key.copy(leaf.node, leaf.off)
    if (this.width > KEY_SIZE) writeU64(leaf.node, leaf.off + KEY_SIZE, lsn)
    const t = leaf.off + this.width
    leaf.node.writeUIntBE(offset, t, 5)
    leaf.node.writeUInt32BE(length, t + 5)
    leaf.node[t + 9] = flags
    leaf.node.writeUInt32BE(crc, t + 10)
  }

  /** Room for one more entry in the open node of a level, sealing the node first when it is full. */
  private slotFor(levelNo: number, entrySize: number): { node: Buffer; off: number } {
    let level = this.level(levelNo)
    if (level.count === capacity(entrySize)) {
      this.sealNode(levelNo)
      level = this.levels[levelNo]
    }
    const off = NODE_HEADER + level.count * entrySize
    level.count++
    return { node: level.open, off }
  }

  /** Closes a level's open node and hands its first key up to the parent level. */
  private sealNode(levelNo: number): void {
    const level = this.levels[levelNo]
    const node = level.open
    node[0] = levelNo
    node.writeUInt16BE(level.count, 2)
    level.sealed.push(node)
    level.open = Buffer.alloc(BLOCK)
    level.count = 0
    const parent = this.slotFor(levelNo + 1, this.internalEntrySize)
    node.copy(parent.node, parent.off, NODE_HEADER, NODE_HEADER + this.width)
    parent.node.writeUInt32BE(level.sealed.length - 1, parent.off + this.width)
  }

  /**
   * Seals the open nodes bottom-up until one level holds a single node, the root. Returns where each level
   * will start in the file and how many nodes it has.
   */
  private finishIndex(firstBlock: number): { starts: number[]; counts: number[] } {
    if (this.entries === 0) return { starts: [], counts: [] }
    for (let n = 0; ; n++) {
      const level = this.levels[n]
      if (n === this.levels.length - 1) {
        // Sealing a node always opens the level above, so the top level has never sealed one: this is the root.
        level.open[0] = n
        level.open.writeUInt16BE(level.count, 2)
        level.sealed.push(level.open)
        level.count = 0
        break
      }
      this.sealNode(n)
    }
    const starts: number[] = []
    const counts: number[] = []
    let next = firstBlock
    for (const level of this.levels) {
      starts.push(next)
      counts.push(level.sealed.length)
      next += level.sealed.length
    }
    return { starts, counts }
  }
}

/** Blocks a scan reads at a time: 1 MiB. */
const SCAN_READ_BLOCKS = 128

/** A window of consecutive blocks read with one pread, refilled as a scan moves forward. */
class ReadAhead {
  private readonly buf: Buffer
  private first = -1
  private count = 0

  constructor(
    private readonly fd: number,
    blocks: number,
  ) {
    this.buf = Buffer.allocUnsafe(blocks * BLOCK)
  }

  block(blockNo: number, missing: (blockNo: number) => Error): Buffer {
    if (blockNo < this.first || blockNo >= this.first + this.count) {
      const got = readSync(this.fd, this.buf, 0, this.buf.length, blockNo * BLOCK)
      this.first = blockNo
      this.count = Math.floor(got / BLOCK)
      if (this.count === 0) throw missing(blockNo)
    }
    const off = (blockNo - this.first) * BLOCK
    return this.buf.subarray(off, off + BLOCK)
  }
}

interface LeafEntryRef {
  /** The leaf block, valid until the next cache call. */
  node: Buffer
  /** Where the entry starts in it. */
  off: number
  lsn: number
  valueOffset: number
  valueLength: number
  flags: number
  valueCrc: number
  /** The leaf's block number, for error messages. */
  blockNo: number
}

/**
 * Reads one layer file. Cheap to keep open: it holds a file descriptor and the parsed header; blocks live in
 * the shared PageCache.
 */
export class LayerFileReader {
  readonly path: string
  readonly summary: LayerSummary
  readonly layout: LayerLayout
  private readonly cache: PageCache
  private readonly fileId: number
  private fd: number
  private closed = false
  private readonly blockCount: number
  private readonly dataBlocks: number
  private readonly width: number
  private readonly leafEntrySize: number
  private readonly internalEntrySize: number
  private readonly levelStarts: number[]
  private readonly levelCounts: number[]
  /** Data blocks holding one whole page whose CRC was checked since the block entered the cache. */
  private readonly checkedPages: Uint8Array

  /** Opens and validates a layer file from its header block; throws LayerCorruptionError when it is bad. */
  static open(file: string, cache: PageCache): LayerFileReader {
    const fd = openSync(file, 'r')
    try {
      return new LayerFileReader(file, fd, cache)
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  private constructor(file: string, fd: number, cache: PageCache) {
    this.path = file
    this.fd = fd
    this.cache = cache
    const size = fstatSync(fd).size
    const h = Buffer.alloc(BLOCK)
    const got = size >= BLOCK ? readSync(fd, h, 0, BLOCK, 0) : 0
    if (got < BLOCK) {
      throw new LayerCorruptionError(file, 0, `is ${size} bytes, too short to hold its header block`)
    }
    const bad = (what: string) => this.blockError(0, `is not a valid header: ${what}`)
    // The magic first: a file that is not a layer at all says so, rather than failing a checksum.
    if (h.readUInt32BE(H.magic) !== MAGIC) {
      throw bad(`magic 0x${h.readUInt32BE(H.magic).toString(16)}, not a zenith layer file`)
    }
    if (!blockIsSound(h, 0)) throw this.blockError(0, 'fails its CRC-32C check')
    const version = h.readUInt16BE(H.version)
    if (version !== FORMAT_VERSION) {
      throw bad(`format version ${version}, this build reads version ${FORMAT_VERSION}`)
    }
    const kind = (Object.keys(KIND_CODE) as LayerKind[]).find((k) => KIND_CODE[k] === h[H.kind])
    const compression = (Object.keys(COMPRESSION_CODE) as LayerCompression[]).find(
      (c) => COMPRESSION_CODE[c] === h[H.compression],
    )
    if (kind === undefined) throw bad(`unknown layer kind ${h[H.kind]}`)
    if (compression === undefined) throw bad(`unknown compression ${h[H.compression]}`)
    const u64 = (off: number, what: string) => {
      const v = readU64(h, off)
      if (v < 0) throw bad(`${what} above 2^53`)
      return v
    }
    const desc: LayerDesc = {
      kind,
      keyStart: Buffer.from(h.subarray(H.keyStart, H.keyStart + KEY_SIZE)),
      keyEnd: Buffer.from(h.subarray(H.keyEnd, H.keyEnd + KEY_SIZE)),
      lsnStart: u64(H.lsnStart, 'the start LSN'),
      lsnEnd: u64(H.lsnEnd, 'the end LSN'),
    }
    const descProblem = checkLayerDesc(desc)
    if (descProblem) throw bad(descProblem)

    this.blockCount = h.readUInt32BE(H.blockCount)
    this.dataBlocks = h.readUInt32BE(H.dataBlocks)
    const indexBlocks = h.readUInt32BE(H.indexBlocks)
    this.width = h[H.keyWidth]
    const height = h[H.height]
    this.leafEntrySize = this.width + LEAF_TAIL
    this.internalEntrySize = this.width + INTERNAL_TAIL
    this.levelStarts = []
    this.levelCounts = []
    if (height > MAX_HEIGHT) throw bad(`an index of ${height} levels, more than ${MAX_HEIGHT}`)
    for (let i = 0; i < height; i++) {
      this.levelStarts.push(h.readUInt32BE(H.levelStarts + 4 * i))
      this.levelCounts.push(h.readUInt32BE(H.levelCounts + 4 * i))
    }
    const entries = u64(H.entries, 'the entry count')
    if (this.width !== keyWidthOf(kind)) throw bad(`index key width ${this.width} in a ${kind} layer`)
    if (this.blockCount !== 1 + this.dataBlocks + indexBlocks || this.blockCount > MAX_BLOCKS_PER_FILE) {
      throw bad('block counts that do not add up')
    }
    let next = 1 + this.dataBlocks
    for (let i = 0; i < height; i++) {
      if (this.levelStarts[i] !== next || this.levelCounts[i] === 0) throw bad(`index level ${i} misplaced`)
      next += this.levelCounts[i]
    }
    if (next !== this.blockCount || (height > 0 && this.levelCounts[height - 1] !== 1)) {
      throw bad('an index that does not end in a single root at the last block')
    }
    if ((height === 0) !== (entries === 0)) throw bad(`${entries} entries but an index of height ${height}`)
    const expected = this.blockCount * BLOCK
    if (size < expected) {
      throw new LayerCorruptionError(
        file,
        size - (size % BLOCK),
        `is truncated: ${size} bytes, its header says ${expected} (${this.blockCount} blocks)`,
      )
    }
    if (size > expected) {
      throw new LayerCorruptionError(file, expected, `has ${size - expected} bytes after its last block`)
    }
    const name = formatLayerName(desc)
    if (path.basename(file) !== name) throw bad(`it describes layer ${name}, which is not this file's name`)

    this.summary = {
      ...desc,
      tenantId: idFromBytes(h.subarray(H.tenantId, H.tenantId + 16)),
      timelineId: idFromBytes(h.subarray(H.timelineId, H.timelineId + 16)),
      entries,
      keys: u64(H.keys, 'the key count'),
      valueBytes: u64(H.valueBytes, 'the value byte count'),
      storedValueBytes: u64(H.storedValueBytes, 'the stored byte count'),
      fileSize: size,
      compression,
    }
    if (this.summary.storedValueBytes > this.dataBlocks * BLOCK) {
      throw bad(`${this.summary.storedValueBytes} value bytes claimed in ${this.dataBlocks} blocks`)
    }
    this.layout = {
      formatVersion: version,
      blockSize: BLOCK,
      blocks: this.blockCount,
      dataBlocks: this.dataBlocks,
      indexBlocks,
      indexHeight: height,
    }
    this.checkedPages = new Uint8Array(this.dataBlocks + 1)
    this.fileId = cache.newFileId()
  }

  /**
   * Delta layer: calls `visitor` for the versions of `key` with lsn in [lsnFloor, lsnCeil), newest first,
   * until it returns true. Image layer: calls it once with the key's value if the key is present and the
   * layer's LSN is in that range. Values are fresh Buffers the visitor may keep.
   */
  visit(key: Buffer, lsnFloor: number, lsnCeil: number, visitor: LayerVisitor): void {
    this.mustBeOpen()
    if (key.length !== KEY_SIZE) throw new RangeError(`a key is ${KEY_SIZE} bytes, got ${key.length}`)
    const s = this.summary
    const floor = Math.max(lsnFloor, s.lsnStart)
    const ceil = Math.min(lsnCeil, s.lsnEnd)
    if (floor >= ceil || s.entries === 0) return
    if (Buffer.compare(key, s.keyStart) < 0 || Buffer.compare(key, s.keyEnd) >= 0) return

    if (s.kind === 'image') {
      const pos = this.seekBefore(searchKey(this.width, key, 0))
      if (!this.step(pos)) return
      const e = this.entryAt(pos.leaf, pos.idx)
      if (compareAt(e.node, e.off, key, KEY_SIZE) !== 0) return
      const flags = e.flags
      visitor(s.lsnStart, this.readValue(e), (flags & FLAG_WILL_INIT) !== 0, (flags & FLAG_IMAGE) !== 0)
      return
    }

    const pos = this.seekBefore(searchKey(this.width, key, ceil))
    for (;;) {
      if (pos.idx < 0) {
        if (pos.leaf === 0) return
        pos.leaf--
        pos.idx = this.entryCount(pos.leaf) - 1
      }
      const e = this.entryAt(pos.leaf, pos.idx)
      if (compareAt(e.node, e.off, key, KEY_SIZE) !== 0 || e.lsn < floor) return
      const { lsn, flags } = e
      if (visitor(lsn, this.readValue(e), (flags & FLAG_WILL_INIT) !== 0, (flags & FLAG_IMAGE) !== 0)) return
      pos.idx--
    }
  }

  /**
   * Every entry in (key, lsn) order, values included; `range` limits the keys. Values are read ahead in
   * large sequential reads past the page cache (they lie in the file in this order): a scan, as compaction
   * makes, neither pays a read per block nor evicts what point reads keep in the cache.
   */
  *entries(range?: KeyRange): Generator<LayerEntry> {
    const ahead = new ReadAhead(this.fd, SCAN_READ_BLOCKS)
    for (const e of this.scan(range)) {
      const key = Buffer.from(e.node.subarray(e.off, e.off + KEY_SIZE))
      const lsn = e.lsn
      const willInit = (e.flags & FLAG_WILL_INIT) !== 0
      const image = (e.flags & FLAG_IMAGE) !== 0
      yield { key, lsn, value: this.readValue(e, ahead), willInit, image }
    }
  }

  /** Every entry in (key, lsn) order as the index describes it: no value is read. */
  *versions(range?: KeyRange): Generator<LayerIndexEntry> {
    for (const e of this.scan(range)) {
      yield {
        key: Buffer.from(e.node.subarray(e.off, e.off + KEY_SIZE)),
        lsn: e.lsn,
        willInit: (e.flags & FLAG_WILL_INIT) !== 0,
        image: (e.flags & FLAG_IMAGE) !== 0,
        storedSize: e.valueLength,
        lz4: (e.flags & FLAG_LZ4) !== 0,
      }
    }
  }

  /** The distinct keys, in order; `range` limits them. */
  *keys(range?: KeyRange): Generator<Buffer> {
    let last: Buffer | null = null
    for (const e of this.scan(range)) {
      if (last !== null && compareAt(e.node, e.off, last, KEY_SIZE) === 0) continue
      last = Buffer.from(e.node.subarray(e.off, e.off + KEY_SIZE))
      yield last
    }
  }

  /**
   * Checks every header and index block's CRC (bypassing the cache, so a scrub does not evict hot
   * blocks), then every value's. Throws LayerCorruptionError for the first bad one.
   */
  verify(): void {
    this.mustBeOpen()
    const chunkBlocks = 128
    const buf = Buffer.allocUnsafe(chunkBlocks * BLOCK)
    for (let first = 0; first < this.blockCount; first += chunkBlocks) {
      const n = Math.min(chunkBlocks, this.blockCount - first)
      const got = readSync(this.fd, buf, 0, n * BLOCK, first * BLOCK)
      for (let i = 0; i < n; i++) {
        if ((i + 1) * BLOCK > got) throw this.blockError(first + i, 'is missing: the file was truncated')
        if (this.isDataBlock(first + i)) continue
        if (!blockIsSound(buf.subarray(i * BLOCK, (i + 1) * BLOCK), first + i)) {
          throw this.blockError(first + i, 'fails its CRC-32C check')
        }
      }
    }
    // Data blocks are covered by the CRCs of the values in them.
    for (const e of this.scan()) this.readValue(e)
  }

  /** Closes the file and drops its blocks from the cache. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.cache.forget(this.fileId)
    closeSync(this.fd)
    this.fd = -1
  }

  private mustBeOpen(): void {
    if (this.closed) throw new Error(`layer file ${this.path} is closed`)
  }

  private blockError(blockNo: number, what: string): LayerCorruptionError {
    return new LayerCorruptionError(
      this.path,
      blockNo * BLOCK,
      `block ${blockNo} (offset ${blockNo * BLOCK}) ${what}`,
    )
  }

  private block(blockNo: number): Buffer {
    // A generator may outlive close(); its next step must not read from a closed (or reused) descriptor.
    this.mustBeOpen()
    return this.cache.read(this.fileId, blockNo, (out) => {
      const got = readSync(this.fd, out, 0, BLOCK, blockNo * BLOCK)
      if (got !== BLOCK) throw this.blockError(blockNo, 'is missing: the file was truncated')
      if (this.isDataBlock(blockNo)) this.checkedPages[blockNo] = 0
      else if (!blockIsSound(out, blockNo)) throw this.blockError(blockNo, 'fails its CRC-32C check')
    })
  }

  /** An index node, checked to be what its parent says it is. */
  private node(level: number, ordinal: number, parentBlock: number): Buffer {
    if (ordinal >= this.levelCounts[level]) {
      throw this.blockError(parentBlock, `points to node ${ordinal} of index level ${level}, which has none`)
    }
    const blockNo = this.levelStarts[level] + ordinal
    const node = this.block(blockNo)
    const count = node.readUInt16BE(2)
    const cap = capacity(level === 0 ? this.leafEntrySize : this.internalEntrySize)
    if (node[0] !== level || count === 0 || count > cap) {
      throw this.blockError(
        blockNo,
        `is not a valid level-${level} index node (level ${node[0]}, ${count} entries)`,
      )
    }
    return node
  }

  private entryCount(leaf: number): number {
    return this.node(0, leaf, 0).readUInt16BE(2)
  }

  /** The position of the last entry whose search key is below `target`; idx -1 when there is none. */
  private seekBefore(target: Buffer): { leaf: number; idx: number } {
    const height = this.levelStarts.length
    let ordinal = 0
    let parentBlock = 0
    for (let level = height - 1; level > 0; level--) {
      const node = this.node(level, ordinal, parentBlock)
      // The last child whose first key is below the target holds the answer; when there is none, the
      // target lies before the whole subtree and the leftmost path leads to position -1.
      const i = Math.max(0, this.lastBelow(node, this.internalEntrySize, target))
      parentBlock = this.levelStarts[level] + ordinal
      ordinal = node.readUInt32BE(NODE_HEADER + i * this.internalEntrySize + this.width)
    }
    const leaf = this.node(0, ordinal, parentBlock)
    return { leaf: ordinal, idx: this.lastBelow(leaf, this.leafEntrySize, target) }
  }

  private lastBelow(node: Buffer, entrySize: number, target: Buffer): number {
    let lo = 0
    let hi = node.readUInt16BE(2)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareAt(node, NODE_HEADER + mid * entrySize, target, this.width) < 0) lo = mid + 1
      else hi = mid
    }
    return lo - 1
  }

  /** Moves a position one entry forward; false at the end of the index. */
  private step(pos: { leaf: number; idx: number }): boolean {
    pos.idx++
    if (pos.idx < this.entryCount(pos.leaf)) return true
    if (pos.leaf + 1 >= this.levelCounts[0]) return false
    pos.leaf++
    pos.idx = 0
    return true
  }

  private entryAt(leaf: number, idx: number): LeafEntryRef {
    const node = this.node(0, leaf, 0)
    const blockNo = this.levelStarts[0] + leaf
    const off = NODE_HEADER + idx * this.leafEntrySize
    const t = off + this.width
    const flags = node[t + 9]
    if (flags & ~(FLAG_WILL_INIT | FLAG_LZ4 | FLAG_IMAGE))
      throw this.blockError(blockNo, `has unknown entry flags ${flags}`)
    return {
      node,
      off,
      lsn: this.width > KEY_SIZE ? this.leafLsn(node, off, blockNo) : this.summary.lsnStart,
      valueOffset: node.readUIntBE(t, 5),
      valueLength: node.readUInt32BE(t + 5),
      flags,
      valueCrc: node.readUInt32BE(t + 10),
      blockNo,
    }
  }

  private leafLsn(node: Buffer, off: number, blockNo: number): number {
    const lsn = readU64(node, off + KEY_SIZE)
    if (lsn < 0) throw this.blockError(blockNo, 'holds an LSN above 2^53')
    return lsn
  }

  private *scan(range?: KeyRange): Generator<LeafEntryRef> {
    this.mustBeOpen()
    const s = this.summary
    if (s.entries === 0) return
    const start = range && Buffer.compare(range.start, s.keyStart) > 0 ? range.start : s.keyStart
    const end = range && Buffer.compare(range.end, s.keyEnd) < 0 ? range.end : s.keyEnd
    if (Buffer.compare(start, end) >= 0) return
    const pos = this.seekBefore(searchKey(this.width, start, 0))
    while (this.step(pos)) {
      const e = this.entryAt(pos.leaf, pos.idx)
      if (compareAt(e.node, e.off, end, KEY_SIZE) >= 0) return
      yield e
    }
  }

  private isDataBlock(blockNo: number): boolean {
    return blockNo >= 1 && blockNo <= this.dataBlocks
  }

  /** The entry's value as a new Buffer, its CRC checked; the entry's leaf Buffer is stale afterwards. */
  private readValue(e: LeafEntryRef, ahead?: ReadAhead): Buffer {
    const len = e.valueLength
    const first = 1 + Math.floor(e.valueOffset / BLOCK)
    const fileOffset = first * BLOCK + (e.valueOffset % BLOCK)
    const crc = e.valueCrc
    const flags = e.flags
    if (e.valueOffset + len > this.summary.storedValueBytes) {
      throw this.blockError(e.blockNo, 'points to a value beyond the end of the value stream')
    }
    const out = len === 0 ? Buffer.alloc(0) : arenaBuffer(len)
    let blockNo = first
    let pos = e.valueOffset % BLOCK
    let done = 0
    while (done < len) {
      const n = Math.min(BLOCK - pos, len - done)
      const block = ahead
        ? ahead.block(blockNo, (b) => this.blockError(b, 'is missing: the file was truncated'))
        : this.block(blockNo)
      block.copy(out, done, pos, pos + n)
      done += n
      blockNo++
      pos = 0
    }
    // A page that fills its block is checked once per load of that block into the cache.
    const wholeBlock = len === BLOCK && e.valueOffset % BLOCK === 0
    if (wholeBlock && !ahead && this.checkedPages[first] === 1) return out
    if (crc32c(out) !== crc) {
      throw new LayerCorruptionError(
        this.path,
        fileOffset,
        `the ${len}-byte value at offset ${fileOffset} fails its CRC-32C check`,
      )
    }
    if (wholeBlock && !ahead) this.checkedPages[first] = 1
    if ((flags & FLAG_LZ4) === 0) return out
    try {
      return uncompressSync(out)
    } catch (err) {
      throw this.blockError(first, `holds an lz4 value that does not decompress: ${(err as Error).message}`)
    }
  }
}
