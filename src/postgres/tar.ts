/**
 * A streaming POSIX ustar writer for basebackups. pg_basebackup's tar format is plain ustar, so the
 * stream can be consumed by `tar -x` and by anything that reads `pg_basebackup -Ft` output.
 *
 * Content reaches the consumer in order through one `write` callback, and the writer waits for each call
 * to settle before making the next, so a slow client throttles the producer instead of filling memory.
 */

const BLOCK_SIZE = 512
/**
 * Headers, padding and small files are gathered into chunks of this size so that a datadir's hundreds of
 * tiny files do not become hundreds of tiny socket writes; chunks at least this big are large enough to
 * send on their own, which spares copying relation segments.
 */
const BATCH_SIZE = 64 * 1024
/** Numeric fields hold octal digits followed by a NUL, so a 12-byte field stops at 11 digits. */
const MAX_SIZE = 0o77777777777
const MAX_MTIME = 0o77777777777
const MAX_ID = 0o7777777
const NAME_LENGTH = 100
const PREFIX_LENGTH = 155
/** User and group names are NUL-terminated within their 32 bytes. */
const MAX_OWNER_NAME_LENGTH = 31
const SLASH = 0x2f
const ZEROS = Buffer.alloc(2 * BLOCK_SIZE)
const DEFAULT_FILE_MODE = 0o600
const DEFAULT_DIR_MODE = 0o700
/** Postgres' own tar headers name this owner; GNU tar extracting as root maps it to the local account. */
const DEFAULT_OWNER_NAME = 'postgres'

export interface TarEntryOptions {
  mode?: number
  /** Unix seconds. */
  mtime?: number
  uid?: number
  gid?: number
  uname?: string
  gname?: string
}

export class TarError extends Error {
  override name = 'TarError'
}

type EntryType = 'file' | 'directory'

export class TarWriter {
  private batch: Buffer | null = null
  private batched = 0
  private delivered = 0
  private busy = false
  private finished = false
  private failure: { error: unknown } | null = null

  /**
   * `write` receives each chunk as it is produced and may return a promise, which the writer awaits before
   * producing more. Chunks belong to the consumer once passed: batches are never reused, and large content
   * chunks are passed on as given, so callers must not modify a chunk after handing it to the writer.
   */
  constructor(private readonly write: (chunk: Buffer) => void | Promise<void>) {}

  /** Bytes the consumer has accepted: after `finish()`, the length of the whole archive. */
  get bytesWritten(): number {
    return this.delivered
  }

  /** `name` has no trailing slash; the entry is written as `name/`. */
  async directory(name: string, opts: TarEntryOptions = {}): Promise<void> {
    this.checkUsable()
    const header = encodeHeader(name, 'directory', 0, opts)
    await this.run(() => this.append(header))
  }

  async file(name: string, data: Buffer, opts: TarEntryOptions = {}): Promise<void> {
    this.checkUsable()
    const header = encodeHeader(name, 'file', data.length, opts)
    await this.run(async () => {
      await this.append(header)
      await this.append(data)
      await this.pad(data.length)
    })
  }

  /**
   * A file whose content arrives in pieces, such as the pages of a relation segment. The header carries
   * the size before any content, so `writeContent` must put exactly `size` bytes, awaiting each `put`;
   * anything else leaves a corrupt archive behind, so it fails the entry and the writer with it.
   */
  async fileStream(
    name: string,
    size: number,
    writeContent: (put: (chunk: Buffer) => Promise<void>) => Promise<void>,
    opts: TarEntryOptions = {},
  ): Promise<void> {
    this.checkUsable()
    const header = encodeHeader(name, 'file', size, opts)
    await this.run(async () => {
      await this.append(header)
      let produced = 0
      let open = true
      let putting = false
      const put = async (chunk: Buffer): Promise<void> => {
        if (!open) throw this.fail(new TarError(`"${name}": content was put after writeContent finished`))
        if (putting) {
          throw this.fail(new TarError(`"${name}": put was called before the previous put completed`))
        }
        if (produced + chunk.length > size) {
          throw this.fail(
            new TarError(`"${name}": writeContent produced more than the declared ${size} bytes`),
          )
        }
        produced += chunk.length
        putting = true
        try {
          await this.append(chunk)
        } finally {
          putting = false
        }
      }
      try {
        await writeContent(put)
      } finally {
        open = false
      }
      // A put that failed may have been caught inside writeContent; the archive is broken all the same.
      if (this.failure) throw this.failure.error
      if (putting) throw new TarError(`"${name}": writeContent finished before its last put completed`)
      if (produced !== size) {
        throw new TarError(`"${name}": writeContent produced ${produced} of the declared ${size} bytes`)
      }
      await this.pad(size)
    })
  }

  /** Ends the archive with two zero blocks and hands over everything still batched. */
  async finish(): Promise<void> {
    this.checkUsable()
    this.finished = true
    await this.run(async () => {
      await this.append(ZEROS)
      await this.flush()
    })
  }

  private checkUsable(): void {
    if (this.finished) throw new TarError('the tar archive is already finished')
    if (this.failure) throw this.unusable()
    if (this.busy) {
      throw new TarError('a tar entry is still being written: await each TarWriter call before the next')
    }
  }

  private unusable(): TarError {
    const cause = this.failure?.error
    const why = cause instanceof Error ? cause.message : String(cause)
    return new TarError(`the tar writer is unusable after an earlier error: ${why}`, { cause })
  }

  private fail(error: unknown): unknown {
    this.failure ??= { error }
    return error
  }

  /** Once an entry has started, any error leaves a partial entry in the stream. */
  private async run(body: () => Promise<void>): Promise<void> {
    this.busy = true
    try {
      await body()
    } catch (err) {
      this.fail(err)
      throw err
    } finally {
      this.busy = false
    }
  }

  private async append(data: Buffer): Promise<void> {
    if (data.length >= BATCH_SIZE) {
      await this.flush()
      await this.deliver(data)
      return
    }
    let done = 0
    while (done < data.length) {
      this.batch ??= Buffer.allocUnsafe(BATCH_SIZE)
      const n = data.copy(this.batch, this.batched, done)
      this.batched += n
      done += n
      if (this.batched === BATCH_SIZE) await this.flush()
    }
  }

  private async pad(size: number): Promise<void> {
    const tail = size % BLOCK_SIZE
    if (tail !== 0) await this.append(ZEROS.subarray(0, BLOCK_SIZE - tail))
  }

  private async flush(): Promise<void> {
    if (this.batched === 0) return
    const chunk = this.batch!.subarray(0, this.batched)
    this.batch = null
    this.batched = 0
    await this.deliver(chunk)
  }

  private async deliver(chunk: Buffer): Promise<void> {
    // Stray puts from a failed entry must not interleave with whatever comes next.
    if (this.failure) throw this.unusable()
    await this.write(chunk)
    this.delivered += chunk.length
  }
}

function encodeHeader(path: string, type: EntryType, size: number, opts: TarEntryOptions): Buffer {
  checkPath(path, type)
  const full = Buffer.from(type === 'directory' ? `${path}/` : path, 'utf8')
  const { prefix, name } = splitPath(path, full)
  // File-type bits, as in a stat() mode, are dropped as Postgres does: the typeflag carries the type.
  const defaultMode = type === 'directory' ? DEFAULT_DIR_MODE : DEFAULT_FILE_MODE
  const mode = checkNumber(path, 'mode', opts.mode ?? defaultMode, Number.MAX_SAFE_INTEGER) & 0o7777
  const uid = checkNumber(path, 'uid', opts.uid ?? 0, MAX_ID)
  const gid = checkNumber(path, 'gid', opts.gid ?? 0, MAX_ID)
  const mtime = checkNumber(path, 'mtime', opts.mtime ?? Math.floor(Date.now() / 1000), MAX_MTIME)
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_SIZE) {
    throw new TarError(`"${path}": size ${size} does not fit a ustar header, whose limit is 8 GiB - 1 bytes`)
  }
  const uname = ownerName(path, 'uname', opts.uname ?? DEFAULT_OWNER_NAME)
  const gname = ownerName(path, 'gname', opts.gname ?? DEFAULT_OWNER_NAME)

  const h = Buffer.alloc(BLOCK_SIZE)
  name.copy(h, 0)
  putOctal(h, 100, 8, mode)
  putOctal(h, 108, 8, uid)
  putOctal(h, 116, 8, gid)
  putOctal(h, 124, 12, size)
  putOctal(h, 136, 12, mtime)
  h.write(type === 'directory' ? '5' : '0', 156, 'ascii')
  h.write('ustar\u000000', 257, 'ascii')
  uname.copy(h, 265)
  gname.copy(h, 297)
  putOctal(h, 329, 8, 0)
  putOctal(h, 337, 8, 0)
  prefix.copy(h, 345)
  // The checksum counts its own field as spaces; six digits, NUL and space is the form GNU tar writes.
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of h) sum += byte
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii')
  return h
}

/** Relative paths of non-empty components only: anything else extracts somewhere unexpected, if at all. */
function checkPath(path: string, type: EntryType): void {
  if (path === '' || path.includes('\u0000')) {
    throw new TarError(`tar ${type} name ${JSON.stringify(path)} is empty or contains a NUL byte`)
  }
  const parts = path.split('/')
  if (parts.some((p) => p === '' || p === '..')) {
    throw new TarError(
      `tar ${type} name "${path}" must be a relative path without empty or ".." components and without a trailing slash`,
    )
  }
}

/**
 * Names over 100 bytes go partly into the prefix field, and readers join the two with a '/', so the
 * split must fall on a slash. The leftmost slash that leaves a short enough name keeps the prefix shortest.
 */
function splitPath(path: string, full: Buffer): { prefix: Buffer; name: Buffer } {
  if (full.length <= NAME_LENGTH) return { prefix: Buffer.alloc(0), name: full }
  const last = Math.min(PREFIX_LENGTH, full.length - 2)
  for (let i = full.length - NAME_LENGTH - 1; i <= last; i++) {
    if (full[i] === SLASH) return { prefix: full.subarray(0, i), name: full.subarray(i + 1) }
  }
  throw new TarError(
    `tar name "${path}" (${full.length} bytes) is too long: ustar needs a '/' splitting it into a prefix of at most ${PREFIX_LENGTH} bytes and a name of at most ${NAME_LENGTH} bytes`,
  )
}

function checkNumber(path: string, what: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TarError(`"${path}": ${what} ${value} does not fit a ustar header (0 .. ${max})`)
  }
  return value
}

function ownerName(path: string, what: string, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length > MAX_OWNER_NAME_LENGTH || bytes.includes(0)) {
    throw new TarError(
      `"${path}": ${what} ${JSON.stringify(value)} must be at most ${MAX_OWNER_NAME_LENGTH} bytes without NUL`,
    )
  }
  return bytes
}

/** Zero-padded octal digits filling the field but for its final NUL, as Postgres writes them. */
function putOctal(h: Buffer, offset: number, width: number, value: number): void {
  h.write(value.toString(8).padStart(width - 1, '0'), offset, 'ascii')
}
