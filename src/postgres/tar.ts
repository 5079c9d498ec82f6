/**
 * A streaming POSIX ustar writer for basebackups. pg_basebackup's tar format is plain ustar, so the
 * stream can be consumed by `tar -x` and by anything that reads `pg_basebackup -Ft` output.
 *
 * Content reaches the consumer in order through one `write` callback, and the writer waits for each call
 * to settle before making the next, so a slow client throttles the producer instead of filling memory.
 *
 * `readTar` reads such archives back (and GNU tar's and pax's, for their long names) from chunks cut
 * anywhere; tar-extract.ts writes one into a directory.
 */

import { type ErrorKind, ZenithError } from '../lib/errors.js'

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

export class TarError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
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

// ---------------------------------------------------------------------------------------------------------
// Reading

export interface TarEntry {
  /** As stored, joined with the ustar prefix or taken from a long-name record; no trailing slash. */
  name: string
  type: 'file' | 'directory' | 'symlink'
  /** Permission bits only. */
  mode: number
  size: number
  linkName?: string
  /** File content; empty for directories and symlinks. Joined from `pieces` on first use. */
  readonly data: Buffer
  /** The content as views of the chunks it arrived in, in order, without a copy: for writev. */
  readonly pieces: readonly Buffer[]
}

const EMPTY = Buffer.alloc(0)
/** Long-name and pax records are small; a bigger one is a corrupt header, not a name worth buffering. */
const MAX_META_SIZE = 1024 * 1024

/**
 * Pulls exact byte counts out of chunks cut anywhere. Content is copied only when it spans chunks, so the
 * source must not modify a chunk after yielding it (Node streams never do).
 */
class ChunkReader {
  private pending: Buffer = EMPTY
  private ended = false
  /** Bytes handed out so far: the archive offset of the next read. */
  position = 0

  constructor(private readonly source: AsyncIterator<Buffer | Uint8Array>) {}

  /** Exactly `n` bytes as views of the chunks they arrived in, or fewer only when the source ends first. */
  async readPieces(n: number): Promise<Buffer[]> {
    const out: Buffer[] = []
    let left = n
    while (left > 0) {
      if (this.pending.length === 0) {
        const next = this.ended ? undefined : await this.source.next()
        if (next === undefined || next.done) {
          this.ended = true
          break
        }
        this.pending = toBuffer(next.value)
        continue
      }
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length))
      this.pending = this.pending.subarray(piece.length)
      out.push(piece)
      left -= piece.length
      this.position += piece.length
    }
    return out
  }

  /** Exactly `n` bytes, or fewer only when the source ends first. */
  async read(n: number): Promise<Buffer> {
    if (this.pending.length >= n) {
      const out = this.pending.subarray(0, n)
      this.pending = this.pending.subarray(n)
      this.position += n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = this.pending.copy(out)
    this.pending = EMPTY
    while (filled < n && !this.ended) {
      const next = await this.source.next()
      if (next.done) {
        this.ended = true
        break
      }
      const chunk = toBuffer(next.value)
      const used = chunk.copy(out, filled)
      filled += used
      if (used < chunk.length) this.pending = chunk.subarray(used)
    }
    this.position += filled
    return filled === n ? out : out.subarray(0, filled)
  }
}

/** Web streams and some clients yield plain Uint8Arrays. */
function toBuffer(b: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

interface Overrides {
  path?: string
  linkpath?: string
  size?: number
}

/**
 * Reads a ustar archive, also GNU tar's and pax's extensions for long names (typeflags 'L', 'K', 'x', 'g'),
 * yielding regular files, directories and symlinks. Any other entry type (hard links, devices, FIFOs) is a
 * TarError: silently dropping it would leave a tree that differs from the archive. So are a bad header
 * checksum and an archive that ends before its two zero blocks, since a network stream cut short must not
 * pass for a complete one. Whatever follows the zero blocks (tar's record padding) is not read.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const iterator = source[Symbol.asyncIterator]()
  const reader = new ChunkReader(iterator)
  let next: Overrides = {}
  try {
    for (;;) {
      const offset = reader.position
      const header = await reader.read(BLOCK_SIZE)
      if (header.length < BLOCK_SIZE) throw truncated(offset, 'a header', header.length)
      if (isZeroBlock(header)) {
        const second = await reader.read(BLOCK_SIZE)
        if (second.length < BLOCK_SIZE)
          throw truncated(offset + BLOCK_SIZE, 'the second zero block', second.length)
        if (!isZeroBlock(second)) {
          throw new TarError(`tar archive has a lone zero block at offset ${offset} followed by more entries`)
        }
        if (next.path !== undefined || next.linkpath !== undefined) {
          throw new TarError(`tar archive ends at offset ${offset} right after a long-name record`)
        }
        return
      }
      verifyChecksum(header, offset)
      const typeflag = header[156] === 0 ? '0' : String.fromCharCode(header[156])
      const headerSize = parseNumber(header, 124, 12, offset, 'size')
      const size = isMeta(typeflag) ? headerSize : (next.size ?? headerSize)
      const label = () => `tar entry "${next.path ?? headerName(header)}" at offset ${offset}`

      if (isMeta(typeflag)) {
        if (size > MAX_META_SIZE) throw new TarError(`${label()}: '${typeflag}' record of ${size} bytes`)
        const data = await readContent(reader, size, label)
        if (typeflag === 'L') next.path = cString(data)
        else if (typeflag === 'K') next.linkpath = cString(data)
        else if (typeflag === 'x') Object.assign(next, parsePax(data, label))
        // 'g' sets defaults for the whole archive; no attribute we report is worth honouring from one.
        continue
      }

      const type = entryType(typeflag)
      if (type === undefined) {
        throw new TarError(
          `${label()} has type '${typeflag}', which only files, directories and symlinks may have`,
        )
      }
      const name = stripTrailingSlashes(next.path ?? headerName(header))
      if (name === '') throw new TarError(`tar entry at offset ${offset} has an empty name`)
      const mode = parseNumber(header, 100, 8, offset, 'mode') & 0o7777
      const linkName = type === 'symlink' ? (next.linkpath ?? cString(header.subarray(157, 257))) : undefined
      // Directories and symlinks normally have no content; skip any rather than misread it as headers.
      const content = await readContentPieces(reader, size, label)
      next = {}
      const pieces = type === 'file' ? content : []
      let joined: Buffer | null = null
      const entry: TarEntry = {
        name,
        type,
        mode,
        size: type === 'file' ? size : 0,
        pieces,
        get data() {
          joined ??= pieces.length === 1 ? pieces[0] : pieces.length === 0 ? EMPTY : Buffer.concat(pieces)
          return joined
        },
      }
      if (linkName !== undefined) entry.linkName = linkName
      yield entry
    }
  } finally {
    // A consumer that stops early releases the source (a socket, say) instead of leaving it half read.
    await iterator.return?.()
  }
}

function truncated(offset: number, what: string, got: number): TarError {
  return new TarError(`tar archive is truncated: it ends at offset ${offset + got} inside ${what}`)
}

function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false
  return true
}

function isMeta(typeflag: string): boolean {
  return typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g'
}

function entryType(typeflag: string): TarEntry['type'] | undefined {
  // '7' is a contiguous file, which readers treat as a regular one.
  if (typeflag === '0' || typeflag === '7') return 'file'
  if (typeflag === '5') return 'directory'
  if (typeflag === '2') return 'symlink'
  return undefined
}

/** Content plus padding to the next block boundary. */
async function readContent(reader: ChunkReader, size: number, label: () => string): Promise<Buffer> {
  const padded = Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE
  const start = reader.position
  const data = await reader.read(padded)
  if (data.length < padded) {
    throw new TarError(
      `tar archive is truncated: ${label()} needs ${size} bytes of content, the archive ends at offset ${start + data.length}`,
    )
  }
  return size === padded ? data : data.subarray(0, size)
}

/** Content as received, without a copy, then the padding to the next block boundary skipped. */
async function readContentPieces(reader: ChunkReader, size: number, label: () => string): Promise<Buffer[]> {
  const start = reader.position
  const pieces = await reader.readPieces(size)
  const padding = Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE - size
  await reader.readPieces(padding)
  const got = reader.position - start
  if (got < size + padding) {
    throw new TarError(
      `tar archive is truncated: ${label()} needs ${size} bytes of content, the archive ends at offset ${start + got}`,
    )
  }
  return pieces
}

function verifyChecksum(header: Buffer, offset: number): void {
  const field = header
    .toString('latin1', 148, 156)
    .replace(/[\0 ]+$/, '')
    .trim()
  if (!/^[0-7]+$/.test(field)) {
    throw new TarError(
      `tar header at offset ${offset} has no valid checksum (${JSON.stringify(field)}): not a tar archive?`,
    )
  }
  const stored = Number.parseInt(field, 8)
  // The sum counts the checksum field as spaces; some old writers summed signed bytes.
  let unsigned = 8 * 0x20
  let signed = 8 * 0x20
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i >= 148 && i < 156) continue
    unsigned += header[i]
    signed += header[i] > 127 ? header[i] - 256 : header[i]
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarError(
      `tar header at offset ${offset} has a bad checksum: stored ${stored.toString(8)}, computed ${unsigned.toString(8)}`,
    )
  }
}

/** Octal digits, or GNU tar's base-256 (high bit set) for values too big for them. */
function parseNumber(header: Buffer, start: number, width: number, offset: number, what: string): number {
  const field = header.subarray(start, start + width)
  if (field[0] & 0x80) {
    if (field[0] & 0x40) throw new TarError(`tar header at offset ${offset} has a negative ${what}`)
    let value = field[0] & 0x3f
    for (let i = 1; i < width; i++) value = value * 256 + field[i]
    if (!Number.isSafeInteger(value))
      throw new TarError(`tar header at offset ${offset}: ${what} is too large`)
    return value
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) {
    throw new TarError(`tar header at offset ${offset} has an invalid ${what} field ${JSON.stringify(text)}`)
  }
  return Number.parseInt(text, 8)
}

/** Only POSIX ustar has a prefix field: GNU tar's format keeps other data at that place. */
function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, NAME_LENGTH))
  if (header.toString('latin1', 257, 263) !== 'ustar\u0000') return name
  const prefix = cString(header.subarray(345, 345 + PREFIX_LENGTH))
  return prefix === '' ? name : `${prefix}/${name}`
}

function cString(field: Buffer): string {
  const end = field.indexOf(0)
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8')
}

function stripTrailingSlashes(name: string): string {
  let end = name.length
  while (end > 1 && name.charCodeAt(end - 1) === SLASH) end--
  return name.slice(0, end)
}

/** pax records are `<length> <key>=<value>\n`, the length counting the whole record in bytes. */
function parsePax(data: Buffer, label: () => string): Overrides {
  const out: Overrides = {}
  let pos = 0
  while (pos < data.length) {
    if (data[pos] === 0) break
    const space = data.indexOf(0x20, pos)
    const length = space < 0 ? Number.NaN : Number(data.toString('latin1', pos, space))
    if (!Number.isSafeInteger(length) || length <= space - pos || pos + length > data.length) {
      throw new TarError(`${label()}: malformed pax record at byte ${pos}`)
    }
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq < 0) throw new TarError(`${label()}: malformed pax record at byte ${pos}`)
    const key = record.slice(0, eq)
    const value = record.slice(eq + 1)
    if (key === 'path') out.path = value
    else if (key === 'linkpath') out.linkpath = value
    else if (key === 'size') {
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new TarError(`${label()}: invalid pax size ${JSON.stringify(value)}`)
      }
      out.size = Number(value)
    }
    pos += length
  }
  return out
}
