/**
 * The append-only file behind an open in-memory layer: values are appended as they arrive and read back
 * through the page cache. Only whole 8 KiB blocks are written out; the last, incomplete block stays in
 * memory, so a block that reaches the cache never changes afterwards. The file is deleted with the layer.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { arenaBuffer } from '../postgres/buffer-arena.js'
import { PAGE_SIZE, type PageCache } from './page-cache.js'

/** Complete blocks go to the file 1 MiB at a time: one write call per 128 pages. */
const WRITE_CHUNK = 128 * PAGE_SIZE

export class EphemeralFile {
  private fd: number
  private readonly fileId: number
  /** Bytes appended so far. */
  private length = 0
  /** Bytes written to the file: always a whole number of blocks. */
  private flushed = 0
  /** The bytes of [flushed, length): at most one incomplete block beyond a batch of complete ones. */
  private tail = Buffer.allocUnsafe(WRITE_CHUNK)

  constructor(
    readonly path: string,
    private readonly cache: PageCache,
  ) {
    this.fd = openSync(path, 'w+', 0o600)
    this.fileId = cache.newFileId()
  }

  get size(): number {
    return this.length
  }

  /** Appends bytes; returns their offset. */
  append(data: Buffer): number {
    const at = this.length
    let used = this.length - this.flushed
    if (used + data.length > this.tail.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.tail.length * 2, used + data.length))
      this.tail.copy(grown, 0, 0, used)
      this.tail = grown
    }
    data.copy(this.tail, used)
    used += data.length
    this.length += data.length
    const whole = used - (used % PAGE_SIZE)
    if (whole >= WRITE_CHUNK) {
      let done = 0
      while (done < whole) done += writeSync(this.fd, this.tail, done, whole - done, this.flushed + done)
      this.tail.copy(this.tail, 0, whole, used)
      this.flushed += whole
    }
    return at
  }

  read(offset: number, len: number): Buffer {
    const out = arenaBuffer(len)
    let done = 0
    while (done < len) {
      const pos = offset + done
      if (pos >= this.flushed) {
        this.tail.copy(out, done, pos - this.flushed, pos - this.flushed + (len - done))
        break
      }
      const blockNo = Math.floor(pos / PAGE_SIZE)
      const within = pos - blockNo * PAGE_SIZE
      const block = this.cache.read(this.fileId, blockNo, (slot) => {
        readSync(this.fd, slot, 0, PAGE_SIZE, blockNo * PAGE_SIZE)
      })
      const n = Math.min(len - done, PAGE_SIZE - within)
      block.copy(out, done, within, within + n)
      done += n
    }
    return out
  }

  /**
   * Writes the incomplete last block out too, for readers of the file itself; nothing may be appended
   * afterwards (a cached copy of that block would go stale).
   */
  writeTail(): void {
    const used = this.length - this.flushed
    let done = 0
    while (done < used) done += writeSync(this.fd, this.tail, done, used - done, this.flushed + done)
    this.flushed = this.length
  }

  /** Reads with one pread (or from the tail), without touching the page cache. */
  readUncached(offset: number, len: number): Buffer {
    const out = arenaBuffer(len)
    const fromFile = Math.max(0, Math.min(len, this.flushed - offset))
    let done = 0
    while (done < fromFile) {
      const n = readSync(this.fd, out, done, fromFile - done, offset + done)
      if (n === 0) throw new Error(`ephemeral file ${this.path} ends before offset ${offset + done}`)
      done += n
    }
    if (fromFile < len)
      this.tail.copy(out, fromFile, offset + fromFile - this.flushed, offset + len - this.flushed)
    return out
  }

  /** Closes and deletes the file. */
  remove(): void {
    this.cache.forget(this.fileId)
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
    rmSync(this.path, { force: true })
  }
}
