/**
 * A safekeeper's WAL of one timeline: full-size segment files named as Postgres names them, so that
 * pg_waldump and openWalDir read the directory like a pg_wal.
 *
 * Three positions: writeLsn (bytes handed to the kernel), flushLsn (bytes fsynced, the only
 * ones an ack may promise) and endRecordLsn (the end of the last complete record, where a decoder can
 * start again). `write` is a positioned write on a cached fd and never syncs; `flush` is group commit,
 * one fsync per segment written since the previous one, shared by every caller that arrives meanwhile.
 *
 * Every written byte is also fed to a headers-only WalDecoder. That keeps endRecordLsn current without
 * reading the files back, and refuses bytes that are not WAL (page and record headers, prev-links; record
 * CRCs are left to the readers and to the end-of-WAL scan below, as a standby's walreceiver leaves them
 * to its startup process); after a refusal the store takes no more writes until
 * `truncate` restarts the decoder at a record boundary (a proposer truncates at every new connection).
 *
 * After a crash the files may end in a torn tail: pages the kernel wrote back that no flush covered, in
 * any order. `open` finds the end of WAL as Postgres' find_end_of_wal does: it decodes from a known record
 * boundary (the control file's flushRecordLsn) to the first invalid byte and cuts the WAL after the last
 * valid record, zeroing the rest of its segment and deleting later ones, so that no later scan can pick up
 * stale records beyond a gap.
 */
import {
  closeSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncDir } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import {
  assertLsn,
  formatLsn,
  isValidSegmentSize,
  type Lsn,
  parseWalFileName,
  segmentNumber,
  segmentOffset,
  segmentStart,
  walFileName,
} from '../postgres/lsn.js'
import { WalDecodeError, WalDecoder } from '../postgres/wal-decoder.js'

export class WalStoreError extends ZenithError {
  static override kind: ErrorKind = 'bug'
  override name = 'WalStoreError'
}

export interface WalStoreOptions {
  walSegSize: number
  pgTimeline: number
  /** When known, checked against every segment's long page header. */
  systemId?: bigint
  /** A record boundary at or below the end of durable WAL, where the end-of-WAL scan begins. */
  scanFrom: Lsn
}

export class WalStore {
  private readonly segSize: number
  private readonly fds = new Map<number, number>()
  /** Segments written since their last fsync. */
  private readonly dirty = new Set<number>()
  /** A segment was created since the last directory fsync. */
  private dirDirty = false
  private decoder: WalDecoder
  private _writeLsn: Lsn
  private _flushLsn: Lsn
  private _endRecordLsn: Lsn
  /** The newest record end decoded; ahead of writeLsn only after an XLOG SWITCH, until its padding arrives. */
  private decodedEnd: Lsn
  private _localStartLsn: Lsn
  private inFlight: Promise<Lsn> | null = null
  private nextFlush: Promise<Lsn> | null = null
  /** An I/O error after which neither the files nor the positions can be trusted; reopen to recover. */
  private failure: ZenithError | null = null
  private closed = false
  private fsyncs = 0

  private constructor(
    readonly dir: string,
    private readonly opts: WalStoreOptions,
    end: Lsn,
    prevRecord: Lsn | undefined,
    localStart: Lsn,
  ) {
    this.segSize = opts.walSegSize
    this._writeLsn = this._flushLsn = this._endRecordLsn = this.decodedEnd = end
    this._localStartLsn = localStart
    this.decoder = this.newDecoder(end, prevRecord)
  }

  static async open(dir: string, opts: WalStoreOptions): Promise<WalStore> {
    if (!isValidSegmentSize(opts.walSegSize)) {
      throw new WalStoreError(`WAL segment size ${opts.walSegSize} is not a power of two from 1 MiB to 1 GiB`)
    }
    const scanFrom = assertLsn(opts.scanFrom, 'scanFrom')
    const segments = listSegments(dir, opts)
    const { end, prevRecord } = await findEndOfWal(dir, opts, segments)
    // Segments below scanFrom's hold older WAL a walsender may still serve.
    const localStart = Math.min(
      scanFrom,
      segments.length > 0 ? segmentStart(segments[0], opts.walSegSize) : scanFrom,
    )
    const store = new WalStore(dir, opts, end, prevRecord, localStart)
    store.cut(end)
    return store
  }

  /** fsyncs issued (segments and directory), for tests and the safekeeper's metrics. */
  get fsyncCount(): number {
    return this.fsyncs
  }

  get writeLsn(): Lsn {
    return this._writeLsn
  }

  get flushLsn(): Lsn {
    return this._flushLsn
  }

  /** End of the last complete record written (MAXALIGNed; after an XLOG SWITCH, its segment's end). */
  get endRecordLsn(): Lsn {
    return this._endRecordLsn
  }

  /** The first LSN that can be read: the start of the oldest segment kept, or scanFrom on a new store. */
  get localStartLsn(): Lsn {
    return this._localStartLsn
  }

  /**
   * Appends WAL at writeLsn, in pieces of any size (cut anywhere, even mid-record). The decoder keeps
   * views of `data` until the record they belong to is complete, so the caller must not reuse it.
   */
  write(lsn: Lsn, data: Buffer): void {
    this.assertUsable()
    if (lsn !== this._writeLsn) {
      throw new WalStoreError(
        `WAL write at ${formatLsn(lsn)} in ${this.dir}, but the WAL written ends at ${formatLsn(this._writeLsn)}: writes must be sequential`,
        { kind: 'conflict' },
      )
    }
    if (data.length === 0) return
    // Decoded before it is written, so bytes the decoder rejects do not reach the files.
    try {
      this.decoder.feed(data)
      for (let end = this.decoder.nextEnd(); end !== null; end = this.decoder.nextEnd()) this.decodedEnd = end
    } catch (err) {
      if (!(err instanceof WalDecodeError)) throw err
      throw new WalStoreError(
        `WAL written to ${this.dir} is invalid at ${formatLsn(err.lsn)}: ${err.reason}; no more WAL is accepted until it is truncated at a record boundary`,
        { kind: 'corruption', cause: err },
      )
    }
    let done = 0
    try {
      while (done < data.length) {
        const pos = lsn + done
        const segNo = segmentNumber(pos, this.segSize)
        const n = Math.min(data.length - done, this.segSize - segmentOffset(pos, this.segSize))
        const fd = this.writeFd(segNo)
        this.dirty.add(segNo)
        for (let k = 0; k < n; ) {
          k += writeSync(fd, data, done + k, n - k, segmentOffset(pos, this.segSize) + k)
        }
        done += n
      }
    } catch (err) {
      throw this.fail(`cannot write WAL at ${formatLsn(lsn + done)}`, err)
    }
    this._writeLsn = lsn + data.length
    if (this.decodedEnd <= this._writeLsn) this._endRecordLsn = this.decodedEnd
  }

  /** Makes everything written so far durable; resolves with the new flushLsn. */
  flush(): Promise<Lsn> {
    if (this.inFlight === null) return this.startFlush()
    // One fsync is running and covers only what was written before it began: later callers share the next.
    this.nextFlush ??= this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.nextFlush = null
        return this.startFlush()
      })
    return this.nextFlush
  }

  /**
   * Drops the WAL at and after `lsn`, durably: writeLsn, flushLsn and endRecordLsn become `lsn`, which must
   * be a record boundary (the decoder starts there). Waits for running flushes, then works synchronously, so
   * no write or fsync can interleave with it.
   */
  async truncate(lsn: Lsn): Promise<void> {
    while (this.inFlight) await this.inFlight.catch(() => undefined)
    this.assertUsable()
    if (lsn < this._localStartLsn || lsn > this._writeLsn) {
      throw new WalStoreError(
        `cannot truncate WAL in ${this.dir} at ${formatLsn(lsn)}: it holds ${formatLsn(this._localStartLsn)} .. ${formatLsn(this._writeLsn)}`,
      )
    }
    this.cut(lsn)
    this.decoder = this.newDecoder(lsn, undefined)
  }

  /** Bytes [lsn, min(lsn + maxBytes, flushLsn)), across segments. */
  read(lsn: Lsn, maxBytes: number): Buffer {
    this.assertUsable()
    if (lsn < this._localStartLsn) {
      throw new WalStoreError(
        `WAL at ${formatLsn(lsn)} is no longer in ${this.dir}: it starts at ${formatLsn(this._localStartLsn)}`,
        { kind: 'not_found' },
      )
    }
    if (lsn > this._flushLsn) {
      throw new WalStoreError(
        `cannot read WAL at ${formatLsn(lsn)} from ${this.dir}: it is durable only up to ${formatLsn(this._flushLsn)}`,
      )
    }
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(maxBytes, this._flushLsn - lsn)))
    let done = 0
    while (done < out.length) {
      const pos = lsn + done
      const segNo = segmentNumber(pos, this.segSize)
      const off = segmentOffset(pos, this.segSize)
      const n = Math.min(out.length - done, this.segSize - off)
      const cached = this.fds.get(segNo)
      const path = this.segmentPath(segNo)
      let fd: number
      try {
        fd = cached ?? openSync(path, 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        throw new WalStoreError(`WAL segment ${path} is missing`, { kind: 'corruption' })
      }
      try {
        for (let k = 0; k < n; ) {
          const got = readSync(fd, out, done + k, n - k, off + k)
          if (got === 0) {
            throw new WalStoreError(
              `WAL segment ${path} ends at offset ${off + k}, expected ${this.segSize} bytes`,
              {
                kind: 'corruption',
              },
            )
          }
          k += got
        }
      } finally {
        if (cached === undefined) closeSync(fd)
      }
      done += n
    }
    return out
  }

  /**
   * Deletes the segment files that end at or below `lsn` (which must be durable) and returns their names.
   * The directory is not fsynced: a deleted segment that reappears after a crash only takes space.
   */
  removeSegmentsBelow(lsn: Lsn): string[] {
    this.assertUsable()
    if (lsn > this._flushLsn) {
      throw new WalStoreError(
        `cannot remove WAL below ${formatLsn(lsn)} from ${this.dir}: it is durable only up to ${formatLsn(this._flushLsn)}`,
      )
    }
    const keepFrom = segmentNumber(lsn, this.segSize)
    const removed: string[] = []
    for (const segNo of listSegments(this.dir, this.opts)) {
      if (segNo >= keepFrom) break
      this.closeSegment(segNo)
      const name = walFileName(this.opts.pgTimeline, segNo, this.segSize)
      rmSync(join(this.dir, name))
      removed.push(name)
    }
    this._localStartLsn = Math.max(this._localStartLsn, segmentStart(keepFrom, this.segSize))
    return removed
  }

  /** Closes the files; call it after the last flush has resolved. */
  close(): void {
    if (this.inFlight) throw new WalStoreError(`WAL store ${this.dir} closed while a flush is running`)
    for (const segNo of [...this.fds.keys()]) this.closeSegment(segNo)
    this.closed = true
  }

  private startFlush(): Promise<Lsn> {
    const p = this.syncDirty().finally(() => {
      if (this.inFlight === p) this.inFlight = null
    })
    this.inFlight = p
    return p
  }

  private async syncDirty(): Promise<Lsn> {
    this.assertUsable()
    // Taken before the first await: writes made while the fsyncs run belong to the next flush.
    const target = this._writeLsn
    const segs = [...this.dirty]
    const dirToo = this.dirDirty
    this.dirty.clear()
    this.dirDirty = false
    try {
      await Promise.all(
        segs.map(
          (segNo) =>
            new Promise<void>((resolve, reject) => {
              this.fsyncs++
              fsync(this.fds.get(segNo)!, (err) => (err ? reject(err) : resolve()))
            }),
        ),
      )
      if (dirToo) {
        this.fsyncs++
        fsyncDir(this.dir)
      }
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing unflushed is trustworthy.
      throw this.fail(`fsync of WAL up to ${formatLsn(target)} failed`, err)
    }
    this._flushLsn = target
    const writing = segmentNumber(this._writeLsn, this.segSize)
    for (const segNo of segs) if (segNo < writing && !this.dirty.has(segNo)) this.closeSegment(segNo)
    return target
  }

  /** Cuts the WAL at `lsn` and makes everything below it durable (see truncate). */
  private cut(lsn: Lsn): void {
    const segNo = segmentNumber(lsn, this.segSize)
    const off = segmentOffset(lsn, this.segSize)
    try {
      const present = listSegments(this.dir, this.opts)
      for (const s of present) {
        if (s < segNo || (s === segNo && off !== 0)) continue
        this.closeSegment(s)
        rmSync(this.segmentPath(s))
      }
      if (off !== 0 && (this.fds.has(segNo) || present.includes(segNo))) {
        // Shrinking and regrowing zeroes the tail in two calls, whatever garbage it held.
        const fd = this.writeFd(segNo)
        ftruncateSync(fd, off)
        ftruncateSync(fd, this.segSize)
        this.dirty.add(segNo)
      }
      for (const s of this.dirty) {
        this.fsyncs++
        fsyncSync(this.fds.get(s)!)
      }
      this.dirty.clear()
      this.fsyncs++
      fsyncDir(this.dir)
      this.dirDirty = false
    } catch (err) {
      throw this.fail(`cannot truncate WAL at ${formatLsn(lsn)}`, err)
    }
    this._writeLsn = this._flushLsn = this._endRecordLsn = this.decodedEnd = lsn
  }

  private newDecoder(startLsn: Lsn, prevLsn: Lsn | undefined): WalDecoder {
    return new WalDecoder({
      startLsn,
      segmentSize: this.segSize,
      timeline: this.opts.pgTimeline,
      systemId: this.opts.systemId,
      prevLsn,
      headersOnly: true,
    })
  }

  /** The fd of a segment to write, creating the file at its full size if it does not exist. */
  private writeFd(segNo: number): number {
    const cached = this.fds.get(segNo)
    if (cached !== undefined) return cached
    const path = this.segmentPath(segNo)
    let fd: number
    try {
      fd = openSync(path, 'r+')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      fd = openSync(path, 'wx+', 0o600)
      ftruncateSync(fd, this.segSize)
      this.dirDirty = true
    }
    this.fds.set(segNo, fd)
    return fd
  }

  private closeSegment(segNo: number): void {
    const fd = this.fds.get(segNo)
    if (fd === undefined) return
    closeSync(fd)
    this.fds.delete(segNo)
    this.dirty.delete(segNo)
  }

  private segmentPath(segNo: number): string {
    return join(this.dir, walFileName(this.opts.pgTimeline, segNo, this.segSize))
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure
    if (this.closed) throw new WalStoreError(`WAL store ${this.dir} is closed`)
  }

  private fail(what: string, err: unknown): ZenithError {
    this.failure = new WalStoreError(`${what} in ${this.dir}: ${(err as Error).message}`, {
      kind: 'external',
      hint: 'Reopen the WAL store: it will find the end of the WAL that reached the disk.',
      cause: err,
    })
    return this.failure
  }
}

/** The timeline's segment numbers present in `dir`, ascending. */
function listSegments(dir: string, opts: WalStoreOptions): number[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    throw new WalStoreError(`WAL directory ${dir} does not exist`, { kind: 'not_found' })
  }
  const segs: number[] = []
  for (const name of names) {
    const parsed = parseWalFileName(name, opts.walSegSize)
    if (parsed && parsed.timeline === opts.pgTimeline) segs.push(parsed.segNo)
  }
  return segs.sort((a, b) => a - b)
}

/**
 * Decodes from scanFrom through consecutive segment files until the WAL stops being valid (or the files
 * end); returns the end of the last complete record and that record's start.
 */
async function findEndOfWal(
  dir: string,
  opts: WalStoreOptions,
  segments: readonly number[],
): Promise<{ end: Lsn; prevRecord: Lsn | undefined }> {
  const segSize = opts.walSegSize
  const decoder = new WalDecoder({
    startLsn: opts.scanFrom,
    segmentSize: segSize,
    timeline: opts.pgTimeline,
    systemId: opts.systemId,
  })
  let end = opts.scanFrom
  const present = new Set(segments)
  for (let segNo = segmentNumber(opts.scanFrom, segSize); present.has(segNo); segNo++) {
    const data = await readFile(join(dir, walFileName(opts.pgTimeline, segNo, segSize)))
    const from = segNo === segmentNumber(opts.scanFrom, segSize) ? segmentOffset(opts.scanFrom, segSize) : 0
    decoder.feed(data.subarray(from, segSize))
    try {
      for (let rec = decoder.next(); rec !== null; rec = decoder.next()) end = decoder.position
    } catch (err) {
      if (!(err instanceof WalDecodeError)) throw err
      break
    }
    // A short file ends the WAL: the next segment's bytes would land at the wrong LSNs.
    if (data.length < segSize) break
  }
  return { end, prevRecord: decoder.lastRecord }
}
