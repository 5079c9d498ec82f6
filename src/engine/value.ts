/**
 * Values stored under a key at an LSN: a page image, or a record that changes the page before it.
 *
 * Records are opaque to the engine: it reconstructs a page by handing the newest image at or below the
 * requested LSN and the records above it, oldest first, to the redo function registered for their kind.
 * A `willInit` record builds the page from nothing, so nothing older is needed.
 *
 * Encoding: image = [0x00][page]; record = [0x01][kind u16 BE][data]. willInit travels beside the value
 * (layer indexes keep it) so that a read can stop without decoding.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export type Value =
  | { kind: 'image'; page: Buffer }
  | { kind: 'record'; recordKind: number; willInit: boolean; data: Buffer }

const TAG_IMAGE = 0
const TAG_RECORD = 1

export class ValueError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ValueError'
}

export function isWillInit(v: Value): boolean {
  return v.kind === 'image' || v.willInit
}

const IMAGE_HEAD = Buffer.from([TAG_IMAGE])

/** The encoding as a head and a body, so that appending a page to a file needs no copy of it. */
export function valueParts(v: Value): [Buffer, Buffer] {
  if (v.kind === 'image') return [IMAGE_HEAD, v.page]
  if (!Number.isInteger(v.recordKind) || v.recordKind < 0 || v.recordKind > 0xffff) {
    throw new ValueError(`record kind ${v.recordKind} is out of range: valid kinds are 0 .. 65535`)
  }
  const head = Buffer.allocUnsafe(3)
  head[0] = TAG_RECORD
  head.writeUInt16BE(v.recordKind, 1)
  return [head, v.data]
}

export function encodeValue(v: Value): Buffer {
  return Buffer.concat(valueParts(v))
}

export function decodeValue(buf: Buffer, willInit: boolean): Value {
  if (buf.length >= 1 && buf[0] === TAG_IMAGE) return { kind: 'image', page: buf.subarray(1) }
  if (buf.length >= 3 && buf[0] === TAG_RECORD) {
    return { kind: 'record', recordKind: buf.readUInt16BE(1), willInit, data: buf.subarray(3) }
  }
  throw new ValueError(`stored value of ${buf.length} bytes has an unknown tag ${buf[0]}`)
}

/**
 * Layer files keep a page image bare, its tag moved into the index entry (`image`), so that an 8 KiB page
 * fills exactly one block of the file: one read per page.
 */
export function storedForm(encoded: Buffer): { bytes: Buffer; image: boolean } {
  return encoded[0] === TAG_IMAGE
    ? { bytes: encoded.subarray(1), image: true }
    : { bytes: encoded, image: false }
}

export function fromStored(bytes: Buffer, willInit: boolean, image: boolean): Value {
  return image ? { kind: 'image', page: bytes } : decodeValue(bytes, willInit)
}

/** Applies one record to the page as it was (null when the record builds the page from nothing). */
export type RedoFunction = (key: Buffer, page: Buffer | null, record: Buffer, lsn: number) => Buffer

export class RedoError extends ZenithError {
  static override kind: ErrorKind = 'bug'
  override name = 'RedoError'
}

/** The redo functions of the record kinds a caller stores; reconstruction refuses unknown kinds. */
export class RedoRegistry {
  private readonly fns = new Map<number, RedoFunction>()

  register(recordKind: number, fn: RedoFunction): this {
    this.fns.set(recordKind, fn)
    return this
  }

  apply(key: Buffer, page: Buffer | null, recordKind: number, record: Buffer, lsn: number): Buffer {
    const fn = this.fns.get(recordKind)
    if (!fn) throw new RedoError(`no redo function is registered for record kind ${recordKind}`)
    return fn(key, page, record, lsn)
  }
}
