/**
 * The Postgres frontend/backend protocol, version 3: message codes, framing, encoders and decoders.
 *
 * Every message after startup is framed as Byte1 type + Int32 length (counting itself, not the type) + body;
 * the startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no type byte
 * and tell themselves apart by the Int32 code that starts their body. All integers are big-endian.
 *
 * Reading is built for replication streams of ~150 MB/s: the reader keeps received chunks as they are and
 * hands out a body as a subarray of its chunk when it lies within one, copying only bodies that straddle
 * chunk boundaries, and only once.
 */
import { type ErrorFields, ProtocolError } from './errors.js'

/** Byte layout of the framing and of the fixed-size parts of messages, in bytes. */
export const LAYOUT = {
  TYPE_SIZE: 1,
  LENGTH_SIZE: 4,
  /** Type byte + length of a typed message. */
  TYPED_HEADER_SIZE: 5,
  /** A startup-phase packet starts with its length only; its body begins with the Int32 code. */
  STARTUP_HEADER_SIZE: 4,
  STARTUP_CODE_SIZE: 4,
  /** Length + code: SSLRequest and GSSENCRequest are exactly this long. */
  STARTUP_REQUEST_LENGTH: 8,
  /** Length + code + process id + secret key. */
  CANCEL_REQUEST_LENGTH: 16,
  /** Postgres refuses startup packets above MAX_STARTUP_PACKET_LENGTH (10000) and so do we. */
  MAX_STARTUP_PACKET_LENGTH: 10_000,
  /** Postgres' PQ_LARGE_MESSAGE_LIMIT is just under 1 GiB; a larger length is garbage, not a message. */
  MAX_MESSAGE_LENGTH: 1 << 30,
  /** Authentication request: Int32 code, then method-specific data (MD5: 4 salt bytes). */
  AUTH_CODE_SIZE: 4,
  MD5_SALT_SIZE: 4,
  /** BackendKeyData body: Int32 process id, Int32 secret key. */
  BACKEND_KEY_PROCESS_ID: 0,
  BACKEND_KEY_SECRET_KEY: 4,
  BACKEND_KEY_DATA_SIZE: 8,
  /** CancelRequest body: Int32 code, Int32 process id, Int32 secret key. */
  CANCEL_PROCESS_ID: 4,
  CANCEL_SECRET_KEY: 8,
  /** The Int16 count that starts RowDescription and DataRow bodies. */
  COUNT_SIZE: 2,
  /** Offsets after each RowDescription field name: table oid Int32, column Int16, type oid Int32,
   * typlen Int16, typmod Int32, format Int16. */
  FIELD_TABLE_OID: 0,
  FIELD_COLUMN_ATTR: 4,
  FIELD_TYPE_OID: 6,
  FIELD_TYPE_SIZE: 10,
  FIELD_TYPE_MODIFIER: 12,
  FIELD_FORMAT: 16,
  ROW_DESCRIPTION_FIELD_TAIL: 18,
  /** DataRow: each value is an Int32 length (-1 for NULL) and that many bytes. */
  VALUE_LENGTH_SIZE: 4,
  /** SASLInitialResponse: mechanism name, Int32 data length, data. */
  SASL_DATA_LENGTH_SIZE: 4,
  /** Copy{In,Out,Both}Response: Int8 overall format, Int16 column count, then Int16 per column. */
  COPY_RESPONSE_FIXED: 3,
  COPY_COLUMN_FORMAT_SIZE: 2,
} as const

/** Protocol 3.0 as the Int32 code of a StartupMessage: major 3 in the high 16 bits, minor 0. */
export const PROTOCOL_VERSION_3_0 = 196608
export const SSL_REQUEST_CODE = 80877103
export const GSSENC_REQUEST_CODE = 80877104
export const CANCEL_REQUEST_CODE = 80877102

/** Type bytes of the messages a server sends, named as in the protocol documentation. */
export const BackendMessageType = {
  Authentication: 'R',
  BackendKeyData: 'K',
  BindComplete: '2',
  CloseComplete: '3',
  CommandComplete: 'C',
  CopyBothResponse: 'W',
  CopyData: 'd',
  CopyDone: 'c',
  CopyInResponse: 'G',
  CopyOutResponse: 'H',
  DataRow: 'D',
  EmptyQueryResponse: 'I',
  ErrorResponse: 'E',
  NegotiateProtocolVersion: 'v',
  NoData: 'n',
  NoticeResponse: 'N',
  NotificationResponse: 'A',
  ParameterDescription: 't',
  ParameterStatus: 'S',
  ParseComplete: '1',
  PortalSuspended: 's',
  ReadyForQuery: 'Z',
  RowDescription: 'T',
} as const

/** Type bytes of the messages a client sends. PasswordMessage, SASLInitialResponse and SASLResponse share 'p'. */
export const FrontendMessageType = {
  Bind: 'B',
  Close: 'C',
  CopyData: 'd',
  CopyDone: 'c',
  CopyFail: 'f',
  Describe: 'D',
  Execute: 'E',
  Flush: 'H',
  FunctionCall: 'F',
  Parse: 'P',
  PasswordMessage: 'p',
  Query: 'Q',
  Sync: 'S',
  Terminate: 'X',
} as const

/** The Int32 that starts an Authentication message's body. */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  SCMCredential: 6,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const

/** ReadyForQuery's transaction status: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E'

/** Column type oids we use for RowDescription. */
export const TEXT_OID = 25
export const INT4_OID = 23

export interface Message {
  /** The type byte as a one-character string, e.g. 'd' for CopyData. */
  type: string
  body: Buffer
}

/** A message whose body is left as views of the chunks it arrived in, however many: never copied. */
export interface PiecesMessage {
  type: string
  pieces: Buffer[]
}

export interface StartupPacket {
  /** The packet's length field (counting itself). */
  length: number
  /** Everything after the length, starting with the Int32 code. */
  body: Buffer
}

const TYPE_CHARS: string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i))

/**
 * Splits a byte stream into messages. Push received chunks in, pull complete messages out; `next()` returns
 * null until the next message is complete and throws ProtocolError on a length no message can have.
 */
export class MessageReader {
  /** Received chunks; those before `first` are consumed (dropped in batches, as shift() is O(n)). */
  private chunks: Buffer[] = []
  private first = 0
  /** Read position inside chunks[first]. */
  private offset = 0
  private buffered = 0

  constructor(private readonly maxLength: number = LAYOUT.MAX_MESSAGE_LENGTH) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** Bytes received but not yet returned as messages. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** The next typed message, or null when it has not fully arrived yet. */
  next(): Message | null {
    const length = this.completeLength()
    if (length === null) return null
    const type = this.peekByte(0)
    this.skip(LAYOUT.TYPED_HEADER_SIZE)
    return { type: TYPE_CHARS[type], body: this.take(length - LAYOUT.LENGTH_SIZE) }
  }

  /** The length field of the next typed message once all of it has arrived, else null. */
  private completeLength(): number | null {
    if (this.buffered < LAYOUT.TYPED_HEADER_SIZE) return null
    const length = this.peekUInt32(LAYOUT.TYPE_SIZE)
    if (length < LAYOUT.LENGTH_SIZE || length > this.maxLength) {
      throw new ProtocolError(
        `invalid length ${length} of message type ${JSON.stringify(TYPE_CHARS[this.peekByte(0)])}: ` +
          `a message length must be between ${LAYOUT.LENGTH_SIZE} and ${this.maxLength} bytes`,
      )
    }
    return this.buffered < LAYOUT.TYPE_SIZE + length ? null : length
  }

  /** next() without joining the body: for bulk data (a COPY's) whose message boundaries do not matter. */
  nextPieces(): PiecesMessage | null {
    const length = this.completeLength()
    if (length === null) return null
    const type = this.peekByte(0)
    this.skip(LAYOUT.TYPED_HEADER_SIZE)
    return { type: TYPE_CHARS[type], pieces: this.takePieces(length - LAYOUT.LENGTH_SIZE) }
  }

  /**
   * The next untyped startup-phase packet, or null when it has not fully arrived yet. It must hold at least
   * its code (8 bytes in all) and, as in Postgres, at most 10000 bytes: anything else is not a client.
   */
  nextStartup(): StartupPacket | null {
    if (this.buffered < LAYOUT.STARTUP_HEADER_SIZE) return null
    const length = this.peekUInt32(0)
    if (length < LAYOUT.STARTUP_REQUEST_LENGTH || length > LAYOUT.MAX_STARTUP_PACKET_LENGTH) {
      throw new ProtocolError(
        `invalid startup packet length ${length}: it must be between ${LAYOUT.STARTUP_REQUEST_LENGTH} ` +
          `and ${LAYOUT.MAX_STARTUP_PACKET_LENGTH} bytes`,
      )
    }
    if (this.buffered < length) return null
    this.skip(LAYOUT.STARTUP_HEADER_SIZE)
    return { length, body: this.take(length - LAYOUT.STARTUP_HEADER_SIZE) }
  }

  /** Header bytes may straddle chunks; walking the few chunks involved is cheaper than merging them. */
  private peekByte(pos: number): number {
    let at = this.offset + pos
    for (let i = this.first; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]
      if (at < chunk.length) return chunk[at]
      at -= chunk.length
    }
    throw new RangeError('internal: peek past the buffered bytes')
  }

  private peekUInt32(pos: number): number {
    const head = this.chunks[this.first]
    if (head.length - this.offset >= pos + LAYOUT.LENGTH_SIZE) return head.readUInt32BE(this.offset + pos)
    return (
      this.peekByte(pos) * 0x100_0000 +
      (this.peekByte(pos + 1) << 16) +
      (this.peekByte(pos + 2) << 8) +
      this.peekByte(pos + 3)
    )
  }

  private skip(n: number): void {
    this.buffered -= n
    while (n > 0) {
      const head = this.chunks[this.first]
      const here = Math.min(n, head.length - this.offset)
      this.offset += here
      n -= here
      if (this.offset === head.length) this.dropHead()
    }
  }

  private dropHead(): void {
    this.offset = 0
    this.first++
    if (this.first === this.chunks.length) {
      this.chunks = []
      this.first = 0
    } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first)
      this.first = 0
    }
  }

  /** n bytes as views of the chunks they lie in. */
  private takePieces(n: number): Buffer[] {
    const out: Buffer[] = []
    while (n > 0) {
      const head = this.chunks[this.first]
      const here = Math.min(n, head.length - this.offset)
      out.push(head.subarray(this.offset, this.offset + here))
      this.skip(here)
      n -= here
    }
    return out
  }

  /** n bytes: a view of the head chunk when they lie inside it, else one copy. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const head = this.chunks[this.first]
    if (head.length - this.offset >= n) {
      const out = head.subarray(this.offset, this.offset + n)
      this.skip(n)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[this.first]
      const here = Math.min(n - filled, chunk.length - this.offset)
      chunk.copy(out, filled, this.offset, this.offset + here)
      filled += here
      this.skip(here)
    }
    return out
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoders

/** Writes into a buffer whose size was computed up front; the size check catches encoder bugs. */
class BodyWriter {
  constructor(
    readonly buf: Buffer,
    public offset: number,
  ) {}

  int8(v: number): this {
    this.buf.writeUInt8(v, this.offset)
    this.offset += 1
    return this
  }

  int16(v: number): this {
    this.buf.writeInt16BE(v, this.offset)
    this.offset += 2
    return this
  }

  int32(v: number): this {
    this.buf.writeInt32BE(v, this.offset)
    this.offset += 4
    return this
  }

  cstring(s: string): this {
    this.offset += this.buf.write(s, this.offset, 'utf8')
    this.buf[this.offset++] = 0
    return this
  }

  bytes(b: Buffer): this {
    b.copy(this.buf, this.offset)
    this.offset += b.length
    return this
  }
}

/** Encoded size of a NUL-terminated string; a NUL inside would cut the string short, so it is refused. */
function cstringSize(s: string, what: string): number {
  if (s.includes('\0'))
    throw new ProtocolError(`${what} contains a NUL byte, which the protocol cannot carry`)
  return Buffer.byteLength(s, 'utf8') + 1
}

/** Frames a message: `type` null makes an untyped startup-phase packet. */
function frame(type: string | null, bodySize: number, fill?: (w: BodyWriter) => void): Buffer {
  const header = type === null ? LAYOUT.STARTUP_HEADER_SIZE : LAYOUT.TYPED_HEADER_SIZE
  const buf = Buffer.allocUnsafe(header + bodySize)
  if (type !== null) buf[0] = type.charCodeAt(0)
  buf.writeUInt32BE(bodySize + LAYOUT.LENGTH_SIZE, header - LAYOUT.LENGTH_SIZE)
  const w = new BodyWriter(buf, header)
  fill?.(w)
  if (w.offset !== buf.length) {
    throw new Error(`internal: encoded ${w.offset} bytes into a ${buf.length}-byte message`)
  }
  return buf
}

// Startup phase (frontend)

export function encodeStartupMessage(params: Record<string, string>): Buffer {
  const entries = Object.entries(params)
  let size = LAYOUT.STARTUP_CODE_SIZE + 1
  for (const [k, v] of entries) size += cstringSize(k, 'startup parameter name') + cstringSize(v, `${k}`)
  return frame(null, size, (w) => {
    w.int32(PROTOCOL_VERSION_3_0)
    for (const [k, v] of entries) w.cstring(k).cstring(v)
    w.int8(0)
  })
}

export function encodeSSLRequest(): Buffer {
  return frame(null, LAYOUT.STARTUP_CODE_SIZE, (w) => w.int32(SSL_REQUEST_CODE))
}

export function encodeGSSENCRequest(): Buffer {
  return frame(null, LAYOUT.STARTUP_CODE_SIZE, (w) => w.int32(GSSENC_REQUEST_CODE))
}

export function encodeCancelRequest(processId: number, secretKey: number): Buffer {
  return frame(null, LAYOUT.CANCEL_REQUEST_LENGTH - LAYOUT.STARTUP_HEADER_SIZE, (w) =>
    w.int32(CANCEL_REQUEST_CODE).int32(processId).int32(secretKey),
  )
}

// Frontend

export function encodeQuery(sql: string): Buffer {
  return frame(FrontendMessageType.Query, cstringSize(sql, 'query text'), (w) => w.cstring(sql))
}

export function encodeTerminate(): Buffer {
  return frame(FrontendMessageType.Terminate, 0)
}

export function encodeSync(): Buffer {
  return frame(FrontendMessageType.Sync, 0)
}

export function encodePasswordMessage(password: string): Buffer {
  return frame(FrontendMessageType.PasswordMessage, cstringSize(password, 'password'), (w) =>
    w.cstring(password),
  )
}

export function encodeSASLInitialResponse(mechanism: string, data: Buffer): Buffer {
  const size = cstringSize(mechanism, 'SASL mechanism') + LAYOUT.SASL_DATA_LENGTH_SIZE + data.length
  return frame(FrontendMessageType.PasswordMessage, size, (w) =>
    w.cstring(mechanism).int32(data.length).bytes(data),
  )
}

export function encodeSASLResponse(data: Buffer): Buffer {
  return frame(FrontendMessageType.PasswordMessage, data.length, (w) => w.bytes(data))
}

export function encodeCopyFail(message: string): Buffer {
  return frame(FrontendMessageType.CopyFail, cstringSize(message, 'CopyFail message'), (w) =>
    w.cstring(message),
  )
}

// Both directions

export function encodeCopyData(payload: Buffer): Buffer {
  return frame(BackendMessageType.CopyData, payload.length, (w) => w.bytes(payload))
}

/** The 5-byte header of a CopyData message, so that a large payload can be written without copying it. */
export function encodeCopyDataHeader(payloadLength: number): Buffer {
  if (payloadLength > LAYOUT.MAX_MESSAGE_LENGTH - LAYOUT.LENGTH_SIZE) {
    throw new ProtocolError(`CopyData payload of ${payloadLength} bytes exceeds the 1 GiB message limit`)
  }
  const buf = Buffer.allocUnsafe(LAYOUT.TYPED_HEADER_SIZE)
  buf[0] = BackendMessageType.CopyData.charCodeAt(0)
  buf.writeUInt32BE(payloadLength + LAYOUT.LENGTH_SIZE, LAYOUT.TYPE_SIZE)
  return buf
}

export function encodeCopyDone(): Buffer {
  return frame(BackendMessageType.CopyDone, 0)
}

// Backend

export function encodeAuthenticationOk(): Buffer {
  return frame(BackendMessageType.Authentication, LAYOUT.AUTH_CODE_SIZE, (w) =>
    w.int32(AuthenticationCode.Ok),
  )
}

export function encodeAuthenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== LAYOUT.MD5_SALT_SIZE)
    throw new ProtocolError(`MD5 salt must be 4 bytes, got ${salt.length}`)
  return frame(BackendMessageType.Authentication, LAYOUT.AUTH_CODE_SIZE + LAYOUT.MD5_SALT_SIZE, (w) =>
    w.int32(AuthenticationCode.MD5Password).bytes(salt),
  )
}

export function encodeAuthenticationSASL(mechanisms: string[]): Buffer {
  let size = LAYOUT.AUTH_CODE_SIZE + 1
  for (const m of mechanisms) size += cstringSize(m, 'SASL mechanism')
  return frame(BackendMessageType.Authentication, size, (w) => {
    w.int32(AuthenticationCode.SASL)
    for (const m of mechanisms) w.cstring(m)
    w.int8(0)
  })
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  const size = cstringSize(name, 'parameter name') + cstringSize(value, `parameter ${name}`)
  return frame(BackendMessageType.ParameterStatus, size, (w) => w.cstring(name).cstring(value))
}

export function encodeBackendKeyData(processId: number, secretKey: number): Buffer {
  return frame(BackendMessageType.BackendKeyData, LAYOUT.BACKEND_KEY_DATA_SIZE, (w) =>
    w.int32(processId).int32(secretKey),
  )
}

export function encodeReadyForQuery(status: TransactionStatus = 'I'): Buffer {
  return frame(BackendMessageType.ReadyForQuery, 1, (w) => w.int8(status.charCodeAt(0)))
}

export interface FieldDescription {
  name: string
  /** Defaults to 25 (text). */
  typeOid?: number
  /** pg_type.typlen: -1 for varlena types, the default. */
  typeSize?: number
  typeModifier?: number
  tableOid?: number
  columnAttr?: number
  /** 0 text, 1 binary; defaults to text. */
  format?: 0 | 1
}

export function encodeRowDescription(fields: FieldDescription[]): Buffer {
  let size: number = LAYOUT.COUNT_SIZE
  for (const f of fields) size += cstringSize(f.name, 'column name') + LAYOUT.ROW_DESCRIPTION_FIELD_TAIL
  return frame(BackendMessageType.RowDescription, size, (w) => {
    w.int16(fields.length)
    for (const f of fields) {
      w.cstring(f.name)
        .int32(f.tableOid ?? 0)
        .int16(f.columnAttr ?? 0)
        .int32(f.typeOid ?? TEXT_OID)
        .int16(f.typeSize ?? -1)
        .int32(f.typeModifier ?? -1)
        .int16(f.format ?? 0)
    }
  })
}

/** Strings are sent as UTF-8 text, Buffers as they are, null as SQL NULL (length -1). */
export function encodeDataRow(values: (string | Buffer | null)[]): Buffer {
  let size: number = LAYOUT.COUNT_SIZE
  const encoded: (Buffer | null)[] = values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v))
  for (const v of encoded) size += LAYOUT.VALUE_LENGTH_SIZE + (v === null ? 0 : v.length)
  return frame(BackendMessageType.DataRow, size, (w) => {
    w.int16(encoded.length)
    for (const v of encoded) {
      if (v === null) w.int32(-1)
      else w.int32(v.length).bytes(v)
    }
  })
}

export function encodeCommandComplete(tag: string): Buffer {
  return frame(BackendMessageType.CommandComplete, cstringSize(tag, 'command tag'), (w) => w.cstring(tag))
}

export function encodeEmptyQueryResponse(): Buffer {
  return frame(BackendMessageType.EmptyQueryResponse, 0)
}

function encodeFields(type: string, fields: ErrorFields): Buffer {
  const entries = Object.entries(fields).filter(([, v]) => v !== undefined)
  let size = 1
  for (const [code, value] of entries) {
    if (code.length !== 1) throw new ProtocolError(`error field code ${JSON.stringify(code)} is not one byte`)
    size += 1 + cstringSize(value, `error field ${code}`)
  }
  return frame(type, size, (w) => {
    for (const [code, value] of entries) w.int8(code.charCodeAt(0)).cstring(value)
    w.int8(0)
  })
}

export function encodeErrorResponse(fields: ErrorFields): Buffer {
  return encodeFields(BackendMessageType.ErrorResponse, fields)
}

export function encodeNoticeResponse(fields: ErrorFields): Buffer {
  return encodeFields(BackendMessageType.NoticeResponse, fields)
}

export interface CopyResponseOptions {
  /** Overall format: 0 text, 1 binary. Defaults to binary, which is what replication and our streams use. */
  format?: 0 | 1
  /** Per-column format codes; none by default. */
  columnFormats?: (0 | 1)[]
}

function encodeCopyResponse(type: string, opts: CopyResponseOptions): Buffer {
  const columns = opts.columnFormats ?? []
  return frame(type, LAYOUT.COPY_RESPONSE_FIXED + LAYOUT.COPY_COLUMN_FORMAT_SIZE * columns.length, (w) => {
    w.int8(opts.format ?? 1).int16(columns.length)
    for (const c of columns) w.int16(c)
  })
}

export function encodeCopyOutResponse(opts: CopyResponseOptions = {}): Buffer {
  return encodeCopyResponse(BackendMessageType.CopyOutResponse, opts)
}

export function encodeCopyBothResponse(opts: CopyResponseOptions = {}): Buffer {
  return encodeCopyResponse(BackendMessageType.CopyBothResponse, opts)
}

// ---------------------------------------------------------------------------------------------------------
// Decoders

/** Reads a NUL-terminated UTF-8 string; `end` is the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, what = 'string'): { value: string; end: number } {
  const nul = buf.indexOf(0, offset)
  if (nul < 0) throw new ProtocolError(`${what} at offset ${offset} is not NUL-terminated`)
  return { value: buf.toString('utf8', offset, nul), end: nul + 1 }
}

function need(buf: Buffer, size: number, what: string): void {
  if (buf.length < size) throw new ProtocolError(`${what} is ${buf.length} bytes, expected at least ${size}`)
}

/** Fields of an ErrorResponse or NoticeResponse. */
export function parseErrorFields(body: Buffer): ErrorFields {
  const fields: ErrorFields = {}
  let pos = 0
  while (pos < body.length && body[pos] !== 0) {
    const code = TYPE_CHARS[body[pos]]
    const { value, end } = readCString(body, pos + 1, `error field ${code}`)
    fields[code] = value
    pos = end
  }
  return fields
}

export function parseRowDescription(body: Buffer): Required<FieldDescription>[] {
  need(body, LAYOUT.COUNT_SIZE, 'RowDescription')
  const count = body.readInt16BE(0)
  const fields: Required<FieldDescription>[] = []
  let pos: number = LAYOUT.COUNT_SIZE
  for (let i = 0; i < count; i++) {
    const { value: name, end } = readCString(body, pos, 'column name')
    need(body, end + LAYOUT.ROW_DESCRIPTION_FIELD_TAIL, 'RowDescription')
    fields.push({
      name,
      tableOid: body.readUInt32BE(end + LAYOUT.FIELD_TABLE_OID),
      columnAttr: body.readInt16BE(end + LAYOUT.FIELD_COLUMN_ATTR),
      typeOid: body.readUInt32BE(end + LAYOUT.FIELD_TYPE_OID),
      typeSize: body.readInt16BE(end + LAYOUT.FIELD_TYPE_SIZE),
      typeModifier: body.readInt32BE(end + LAYOUT.FIELD_TYPE_MODIFIER),
      format: body.readInt16BE(end + LAYOUT.FIELD_FORMAT) === 1 ? 1 : 0,
    })
    pos = end + LAYOUT.ROW_DESCRIPTION_FIELD_TAIL
  }
  return fields
}

function forEachColumn(body: Buffer, fn: (start: number, length: number) => void): void {
  need(body, LAYOUT.COUNT_SIZE, 'DataRow')
  const count = body.readInt16BE(0)
  let pos: number = LAYOUT.COUNT_SIZE
  for (let i = 0; i < count; i++) {
    need(body, pos + LAYOUT.VALUE_LENGTH_SIZE, 'DataRow')
    const length = body.readInt32BE(pos)
    pos += LAYOUT.VALUE_LENGTH_SIZE
    if (length >= 0) need(body, pos + length, 'DataRow')
    fn(pos, length)
    if (length > 0) pos += length
  }
}

/** Column values as text; null for SQL NULL. */
export function parseDataRowText(body: Buffer): (string | null)[] {
  const values: (string | null)[] = []
  forEachColumn(body, (start, length) =>
    values.push(length < 0 ? null : body.toString('utf8', start, start + length)),
  )
  return values
}

/** Column values as views of the body; null for SQL NULL. */
export function parseDataRow(body: Buffer): (Buffer | null)[] {
  const values: (Buffer | null)[] = []
  forEachColumn(body, (start, length) =>
    values.push(length < 0 ? null : body.subarray(start, start + length)),
  )
  return values
}

/** The single NUL-terminated string of CommandComplete, Query, CopyFail and PasswordMessage bodies. */
export function parseCStringBody(body: Buffer, what: string): string {
  return readCString(body, 0, what).value
}

export function parseParameterStatus(body: Buffer): { name: string; value: string } {
  const name = readCString(body, 0, 'parameter name')
  const value = readCString(body, name.end, `parameter ${name.value}`)
  return { name: name.value, value: value.value }
}

export function parseBackendKeyData(body: Buffer): { processId: number; secretKey: number } {
  need(body, LAYOUT.BACKEND_KEY_DATA_SIZE, 'BackendKeyData')
  return {
    processId: body.readInt32BE(LAYOUT.BACKEND_KEY_PROCESS_ID),
    secretKey: body.readInt32BE(LAYOUT.BACKEND_KEY_SECRET_KEY),
  }
}

/** An Authentication message: its code and the method-specific data after it. */
export function parseAuthentication(body: Buffer): { code: number; data: Buffer } {
  need(body, LAYOUT.AUTH_CODE_SIZE, 'Authentication message')
  return { code: body.readInt32BE(0), data: body.subarray(LAYOUT.AUTH_CODE_SIZE) }
}

/** A sequence of NUL-terminated strings ended by an empty one (SASL mechanism lists). */
export function parseCStringList(buf: Buffer, what: string): string[] {
  const out: string[] = []
  let pos = 0
  while (pos < buf.length && buf[pos] !== 0) {
    const { value, end } = readCString(buf, pos, what)
    out.push(value)
    pos = end
  }
  return out
}

export type StartupRequest =
  | { kind: 'startup'; major: number; minor: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: number }
  | { kind: 'unsupported'; major: number; minor: number }

/** Classifies a startup-phase packet by its code; StartupMessage parameters are decoded for protocol 3. */
export function parseStartupPacket(body: Buffer): StartupRequest {
  need(body, LAYOUT.STARTUP_CODE_SIZE, 'startup packet')
  const code = body.readUInt32BE(0)
  if (code === SSL_REQUEST_CODE) return { kind: 'ssl' }
  if (code === GSSENC_REQUEST_CODE) return { kind: 'gssenc' }
  if (code === CANCEL_REQUEST_CODE) {
    need(body, LAYOUT.CANCEL_REQUEST_LENGTH - LAYOUT.STARTUP_HEADER_SIZE, 'CancelRequest')
    return {
      kind: 'cancel',
      processId: body.readInt32BE(LAYOUT.CANCEL_PROCESS_ID),
      secretKey: body.readInt32BE(LAYOUT.CANCEL_SECRET_KEY),
    }
  }
  const major = code >>> 16
  const minor = code & 0xffff
  if (code !== PROTOCOL_VERSION_3_0) return { kind: 'unsupported', major, minor }
  // name/value pairs ended by an empty name; like Postgres we insist on that final NUL being the last byte.
  const params: Record<string, string> = {}
  let pos: number = LAYOUT.STARTUP_CODE_SIZE
  for (;;) {
    if (pos >= body.length) throw new ProtocolError('invalid startup packet layout: missing the final NUL')
    if (body[pos] === 0) break
    const name = readCString(body, pos, 'startup parameter name')
    const value = readCString(body, name.end, `startup parameter ${name.value}`)
    params[name.value] = value.value
    pos = value.end
  }
  if (pos !== body.length - 1) {
    throw new ProtocolError('invalid startup packet layout: expected the final NUL as the last byte')
  }
  return { kind: 'startup', major, minor, params }
}
