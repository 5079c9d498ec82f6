/**
 * WAL held in memory for a walsender whose WAL exists nowhere else (synthetic WAL made as it is sent):
 * chunks pushed in LSN order, kept until the receiver has them. The receiver resumes at a record end at
 * or below the last `write` it reported — a pageserver at its last_record_lsn, which covers every record
 * wholly received — so a chunk, which holds whole records, may go once a reported write reaches its end.
 */
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import type { WalSource } from './wal-stream.js'

interface Chunk {
  start: Lsn
  data: Buffer
}

export class WalQueue implements WalSource {
  private chunks: Chunk[] = []
  private end: Lsn
  private from: Lsn
  private wake: (() => void)[] = []

  constructor(start: Lsn) {
    this.end = start
    this.from = start
  }

  /** The end of the WAL pushed so far. */
  get endLsn(): Lsn {
    return this.end
  }

  /** The oldest LSN still held: a receiver may start anywhere from here to endLsn. */
  get startLsn(): Lsn {
    return this.from
  }

  /** Bytes held: pushed and not yet released. */
  get heldBytes(): number {
    return this.end - this.from
  }

  /** Appends WAL that starts at endLsn and ends on a record boundary. */
  push(data: Buffer): void {
    if (data.length === 0) return
    this.chunks.push({ start: this.end, data })
    this.end += data.length
    const wake = this.wake
    this.wake = []
    for (const w of wake) w()
  }

  /** The receiver has everything below `lsn`: chunks that end at or below it are dropped. */
  release(lsn: Lsn): void {
    let n = 0
    while (n < this.chunks.length && this.chunks[n].start + this.chunks[n].data.length <= lsn) n++
    if (n === 0) return
    this.chunks.splice(0, n)
    this.from = this.chunks[0]?.start ?? this.end
  }

  limit(): Lsn {
    return this.end
  }

  /** From one chunk: at most to its end, so a read may return less than `maxBytes`. */
  read(lsn: Lsn, maxBytes: number): Buffer {
    let lo = 0
    let hi = this.chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.chunks[mid].start <= lsn) lo = mid
      else hi = mid - 1
    }
    const c = this.chunks[lo]
    if (c === undefined || lsn < c.start || lsn >= c.start + c.data.length) {
      throw new RangeError(
        `WAL at ${formatLsn(lsn)} is not held: ${formatLsn(this.from)}..${formatLsn(this.end)}`,
      )
    }
    const off = lsn - c.start
    return c.data.subarray(off, Math.min(c.data.length, off + maxBytes))
  }

  waitForMore(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const woken = () => {
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        this.wake = this.wake.filter((w) => w !== woken)
        resolve()
      }, ms)
      this.wake.push(woken)
    })
  }
}
