/**
 * Neon's pagestream messages: the requests a compute (or a tool) sends in CopyData over the page
 * service's CopyBoth stream, and the responses. All integers big-endian.
 *
 *   request v2: tag u8 | request_lsn u64 | not_modified_since u64 | body
 *   request v3: tag u8 | reqid u64 | request_lsn u64 | not_modified_since u64 | body
 *   bodies:     Exists, Nblocks: spc u32 | db u32 | rel u32 | fork u8
 *               GetPage:         spc u32 | db u32 | rel u32 | fork u8 | blkno u32
 *               DbSize:          dbnode u32
 *               GetSlruSegment:  kind u8 | segno u32
 *   response v2: tag u8 | result; v3: tag u8 | reqid | request_lsn | not_modified_since | request body | result
 *   results:    Exists u8 | Nblocks u32 | GetPage 8192 bytes | Error C-string | DbSize i64 |
 *               GetSlruSegment nblocks u32 + nblocks * 8192 bytes
 *
 * An LSN above 2^53 (computes send u64::MAX for "latest") is read as LATEST_LSN.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { Lsn } from '../postgres/lsn.js'

export const PagestreamTag = {
  Exists: 0,
  Nblocks: 1,
  GetPage: 2,
  DbSize: 3,
  GetSlruSegment: 4,
} as const
export const PagestreamResponseTag = {
  Exists: 100,
  Nblocks: 101,
  GetPage: 102,
  Error: 103,
  DbSize: 104,
  GetSlruSegment: 105,
} as const

export const LATEST_LSN = Number.POSITIVE_INFINITY
const U64_MAX = 0xffff_ffff_ffff_ffffn

export type PagestreamVersion = 2 | 3

export interface RelTagWire {
  spcNode: number
  dbNode: number
  relNode: number
  forkNum: number
}

export type PagestreamRequestBody =
  | { kind: 'exists'; rel: RelTagWire }
  | { kind: 'nblocks'; rel: RelTagWire }
  | { kind: 'getpage'; rel: RelTagWire; blkno: number }
  | { kind: 'dbsize'; dbNode: number }
  | { kind: 'slru'; slruKind: number; segno: number }

export type PagestreamRequest = PagestreamRequestBody & {
  reqid: bigint
  requestLsn: Lsn
  notModifiedSince: Lsn
}

export type PagestreamResult =
  | { kind: 'exists'; exists: boolean }
  | { kind: 'nblocks'; nblocks: number }
  | { kind: 'getpage'; page: Buffer }
  | { kind: 'dbsize'; bytes: number }
  | { kind: 'slru'; nblocks: number; data: Buffer }
  | { kind: 'error'; message: string }

export class PagestreamError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'PagestreamError'
}

const TAG_OF: Record<PagestreamRequestBody['kind'], number> = {
  exists: PagestreamTag.Exists,
  nblocks: PagestreamTag.Nblocks,
  getpage: PagestreamTag.GetPage,
  dbsize: PagestreamTag.DbSize,
  slru: PagestreamTag.GetSlruSegment,
}
const RESULT_TAG: Record<PagestreamResult['kind'], number> = {
  exists: PagestreamResponseTag.Exists,
  nblocks: PagestreamResponseTag.Nblocks,
  getpage: PagestreamResponseTag.GetPage,
  dbsize: PagestreamResponseTag.DbSize,
  slru: PagestreamResponseTag.GetSlruSegment,
  error: PagestreamResponseTag.Error,
}

const headerSize = (v: PagestreamVersion) => (v === 3 ? 25 : 17)

function lsnFromU64(v: bigint): Lsn {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? LATEST_LSN : Number(v)
}

function lsnToU64(lsn: Lsn): bigint {
  return lsn === LATEST_LSN ? U64_MAX : BigInt(lsn)
}

function bodySize(b: PagestreamRequestBody): number {
  switch (b.kind) {
    case 'exists':
    case 'nblocks':
      return 13
    case 'getpage':
      return 17
    case 'dbsize':
      return 4
    case 'slru':
      return 5
  }
}

function writeBody(buf: Buffer, at: number, b: PagestreamRequestBody): void {
  switch (b.kind) {
    case 'exists':
    case 'nblocks':
    case 'getpage':
      buf.writeUInt32BE(b.rel.spcNode, at)
      buf.writeUInt32BE(b.rel.dbNode, at + 4)
      buf.writeUInt32BE(b.rel.relNode, at + 8)
      buf.writeUInt8(b.rel.forkNum, at + 12)
      if (b.kind === 'getpage') buf.writeUInt32BE(b.blkno, at + 13)
      return
    case 'dbsize':
      buf.writeUInt32BE(b.dbNode, at)
      return
    case 'slru':
      buf.writeUInt8(b.slruKind, at)
      buf.writeUInt32BE(b.segno, at + 1)
  }
}

function readRel(buf: Buffer, at: number): RelTagWire {
  return {
    spcNode: buf.readUInt32BE(at),
    dbNode: buf.readUInt32BE(at + 4),
    relNode: buf.readUInt32BE(at + 8),
    forkNum: buf.readUInt8(at + 12),
  }
}

export function encodeRequest(req: PagestreamRequest, version: PagestreamVersion): Buffer {
  const h = headerSize(version)
  const buf = Buffer.alloc(h + bodySize(req))
  buf.writeUInt8(TAG_OF[req.kind], 0)
  let at = 1
  if (version === 3) {
    buf.writeBigUInt64BE(req.reqid, at)
    at += 8
  }
  buf.writeBigUInt64BE(lsnToU64(req.requestLsn), at)
  buf.writeBigUInt64BE(lsnToU64(req.notModifiedSince), at + 8)
  writeBody(buf, h, req)
  return buf
}

export function decodeRequest(buf: Buffer, version: PagestreamVersion): PagestreamRequest {
  const h = headerSize(version)
  if (buf.length < h)
    throw new PagestreamError(`pagestream request of ${buf.length} bytes is shorter than its header`)
  const tag = buf.readUInt8(0)
  let at = 1
  let reqid = 0n
  if (version === 3) {
    reqid = buf.readBigUInt64BE(at)
    at += 8
  }
  const head = {
    reqid,
    requestLsn: lsnFromU64(buf.readBigUInt64BE(at)),
    notModifiedSince: lsnFromU64(buf.readBigUInt64BE(at + 8)),
  }
  const need = (n: number, what: string) => {
    if (buf.length !== h + n)
      throw new PagestreamError(`pagestream ${what} request has ${buf.length - h} body bytes, expected ${n}`)
  }
  switch (tag) {
    case PagestreamTag.Exists:
      need(13, 'exists')
      return { ...head, kind: 'exists', rel: readRel(buf, h) }
    case PagestreamTag.Nblocks:
      need(13, 'nblocks')
      return { ...head, kind: 'nblocks', rel: readRel(buf, h) }
    case PagestreamTag.GetPage:
      need(17, 'getpage')
      return { ...head, kind: 'getpage', rel: readRel(buf, h), blkno: buf.readUInt32BE(h + 13) }
    case PagestreamTag.DbSize:
      need(4, 'dbsize')
      return { ...head, kind: 'dbsize', dbNode: buf.readUInt32BE(h) }
    case PagestreamTag.GetSlruSegment:
      need(5, 'slru')
      return { ...head, kind: 'slru', slruKind: buf.readUInt8(h), segno: buf.readUInt32BE(h + 1) }
    default:
      throw new PagestreamError(`unknown pagestream request tag ${tag}; known tags are 0 to 4`)
  }
}

function resultBytes(r: PagestreamResult): Buffer {
  switch (r.kind) {
    case 'exists':
      return Buffer.from([r.exists ? 1 : 0])
    case 'nblocks': {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(r.nblocks)
      return b
    }
    case 'getpage':
      return r.page
    case 'dbsize': {
      const b = Buffer.alloc(8)
      b.writeBigInt64BE(BigInt(r.bytes))
      return b
    }
    case 'slru': {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(r.nblocks)
      return Buffer.concat([b, r.data])
    }
    case 'error':
      return Buffer.from(`${r.message}\0`)
  }
}

/** The response to `req`: v3 echoes the request's header and body before the result. */
export function encodeResponse(
  req: PagestreamRequest,
  r: PagestreamResult,
  version: PagestreamVersion,
): Buffer {
  const result = resultBytes(r)
  if (version === 2) return Buffer.concat([Buffer.from([RESULT_TAG[r.kind]]), result])
  const echo = encodeRequest(req, 3)
  echo.writeUInt8(RESULT_TAG[r.kind], 0)
  // An error echoes only the header: the body of the failed request is not repeated.
  const head = r.kind === 'error' ? echo.subarray(0, headerSize(3)) : echo
  return Buffer.concat([head, result])
}

/** Reads a response (the client's side: tools and tests). */
export function decodeResponse(
  buf: Buffer,
  req: PagestreamRequest,
  version: PagestreamVersion,
): PagestreamResult {
  const tag = buf.readUInt8(0)
  const skip =
    version === 2 ? 1 : tag === PagestreamResponseTag.Error ? headerSize(3) : headerSize(3) + bodySize(req)
  const body = buf.subarray(skip)
  switch (tag) {
    case PagestreamResponseTag.Exists:
      return { kind: 'exists', exists: body.readUInt8(0) !== 0 }
    case PagestreamResponseTag.Nblocks:
      return { kind: 'nblocks', nblocks: body.readUInt32BE(0) }
    case PagestreamResponseTag.GetPage:
      return { kind: 'getpage', page: body }
    case PagestreamResponseTag.DbSize:
      return { kind: 'dbsize', bytes: Number(body.readBigInt64BE(0)) }
    case PagestreamResponseTag.GetSlruSegment:
      return { kind: 'slru', nblocks: body.readUInt32BE(0), data: body.subarray(4) }
    case PagestreamResponseTag.Error: {
      const end = body.indexOf(0)
      return { kind: 'error', message: body.subarray(0, end < 0 ? body.length : end).toString('utf8') }
    }
    default:
      throw new PagestreamError(`unknown pagestream response tag ${tag}`)
  }
}
