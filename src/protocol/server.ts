/**
 * The server end of one Postgres protocol connection, for our own servers (pageserver, safekeeper-style
 * endpoints) that speak to psql, to stock Postgres and to our PgClient.
 *
 * Only what those peers need: trust authentication, the simple query protocol and the COPY sub-protocols.
 * The extended query protocol arrives as `{ type: 'other' }` messages for the caller to refuse. Encryption
 * requests (SSLRequest, GSSENCRequest) are declined with 'N', which libpq's default sslmode=prefer accepts.
 */
import { randomInt } from 'node:crypto'
import type { Socket } from 'node:net'
import { ProtocolError } from './errors.js'
import { MessageSocket } from './message-socket.js'
import {
  type CopyResponseOptions,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeCommandComplete,
  encodeCopyBothResponse,
  encodeCopyDone,
  encodeCopyOutResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeRowDescription,
  FrontendMessageType,
  parseCStringBody,
  parseStartupPacket,
  type TransactionStatus,
} from './messages.js'

/** Startup parameters as the client sent them (user, database, options, application_name, replication, …). */
export type StartupParams = Record<string, string>

export type FrontendMessage =
  | { type: 'query'; sql: string }
  | { type: 'terminate' }
  | { type: 'copyData'; data: Buffer }
  | { type: 'copyDone' }
  | { type: 'copyFail'; message: string }
  | { type: 'sync' }
  | { type: 'other'; code: string; body: Buffer }

export interface ErrorOptions {
  message: string
  /** SQLSTATE; defaults to XX000 (internal_error). */
  code?: string
  severity?: 'ERROR' | 'FATAL'
  detail?: string
  hint?: string
}

export interface StartupOptions {
  /** Extra ParameterStatus values, sent after (and overriding) the defaults. */
  parameters?: Record<string, string>
  /** A client that has not finished startup by then is dropped, like Postgres' authentication_timeout. */
  timeoutMs?: number
}

/** What psql and libpq expect to learn at startup; server_version must parse as "major.minor". */
const DEFAULT_PARAMETERS: Record<string, string> = {
  server_version: '15.0 (zenith)',
  server_encoding: 'UTF8',
  client_encoding: 'UTF8',
  DateStyle: 'ISO',
  integer_datetimes: 'on',
  standard_conforming_strings: 'on',
}

const DEFAULT_STARTUP_TIMEOUT_MS = 60_000

/** SQLSTATEs we send on our own account. */
const SQLSTATE_PROTOCOL_VIOLATION = '08P01'
const SQLSTATE_FEATURE_NOT_SUPPORTED = '0A000'
const SQLSTATE_INVALID_AUTHORIZATION = '28000'

export class PgServerConnection {
  private readonly io: MessageSocket
  private startupDone = false
  /** Sent in BackendKeyData; we implement no cancellation, but clients expect the message. */
  readonly processId = randomInt(1, 0x7fff_ffff)
  readonly secretKey = randomInt(0, 0x7fff_ffff)
  private params: StartupParams | null = null

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true)
    this.io = new MessageSocket(socket)
  }

  /** True once close() was called or the socket is gone. */
  get closed(): boolean {
    return this.io.closed
  }

  /** Times drain() had to wait for the client, for observing backpressure. */
  get drainWaits(): number {
    return this.io.drainWaits
  }

  /** The startup parameters, once startup() succeeded. */
  get startupParams(): StartupParams | null {
    return this.params
  }

  /**
   * Runs the startup phase: declines encryption requests, accepts protocol 3.0 with trust authentication and
   * tells the client about the server. Resolves with the client's startup parameters (`database` defaults to
   * `user`, as in Postgres), or null when no session follows: for a CancelRequest (we cannot cancel anything,
   * so like Postgres we close without an answer), when the client leaves first, or when it has not finished
   * startup within `timeoutMs` (60 s by default; the connection is then destroyed). Rejects with ProtocolError
   * on malformed packets and unsupported protocol versions, after sending the client a FATAL error and
   * closing the connection.
   */
  async startup(opts: StartupOptions = {}): Promise<StartupParams | null> {
    if (this.startupDone) throw new ProtocolError('startup() was already called on this connection')
    this.startupDone = true
    const timeoutMs = opts.timeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS
    const timer = setTimeout(() => this.io.destroy(), timeoutMs)
    timer.unref()
    try {
      const params = await this.negotiate()
      if (params === null) return null
      this.io.write(encodeAuthenticationOk())
      for (const [name, value] of Object.entries({ ...DEFAULT_PARAMETERS, ...opts.parameters })) {
        this.io.write(encodeParameterStatus(name, value))
      }
      this.io.write(encodeBackendKeyData(this.processId, this.secretKey))
      this.io.write(encodeReadyForQuery('I'))
      this.params = params
      return params
    } finally {
      clearTimeout(timer)
    }
  }

  private async negotiate(): Promise<StartupParams | null> {
    let sslDeclined = false
    let gssDeclined = false
    for (;;) {
      const packet = await this.guard(() => this.io.nextStartup())
      if (packet === null) return null
      const request = await this.guard(async () => parseStartupPacket(packet.body))
      switch (request.kind) {
        case 'ssl':
        case 'gssenc': {
          // A client asks for each at most once; a loop of requests is not a client we want to talk to.
          const repeated = request.kind === 'ssl' ? sslDeclined : gssDeclined
          if (repeated)
            this.fatal(SQLSTATE_PROTOCOL_VIOLATION, `repeated ${request.kind} negotiation request`)
          if (request.kind === 'ssl') sslDeclined = true
          else gssDeclined = true
          this.io.write(Buffer.from('N'))
          this.io.flush()
          break
        }
        case 'cancel':
          this.io.close()
          return null
        case 'unsupported':
          this.fatal(
            SQLSTATE_FEATURE_NOT_SUPPORTED,
            `unsupported frontend protocol ${request.major}.${request.minor}: server supports 3.0`,
          )
          break
        case 'startup': {
          const params = request.params
          if (!params.user) {
            this.fatal(SQLSTATE_INVALID_AUTHORIZATION, 'no PostgreSQL user name specified in startup packet')
          }
          params.database ??= params.user
          return params
        }
      }
    }
  }

  /** Turns a ProtocolError of `fn` into a FATAL answer and a closed connection before passing it on. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof ProtocolError) this.fatal(SQLSTATE_PROTOCOL_VIOLATION, err.message)
      throw err
    }
  }

  private fatal(code: string, message: string): never {
    this.error({ message, code, severity: 'FATAL' })
    this.io.close()
    throw new ProtocolError(message)
  }

  /**
   * The next message from the client; null when the client went away (EOF, reset). Rejects with
   * ProtocolError on a malformed message, after answering FATAL and closing the connection.
   */
  async next(): Promise<FrontendMessage | null> {
    const m = await this.guard(() => this.io.next())
    if (m === null) return null
    return this.guard(async (): Promise<FrontendMessage> => {
      switch (m.type) {
        case FrontendMessageType.Query:
          return { type: 'query', sql: parseCStringBody(m.body, 'query text') }
        case FrontendMessageType.Terminate:
          return { type: 'terminate' }
        case FrontendMessageType.CopyData:
          return { type: 'copyData', data: m.body }
        case FrontendMessageType.CopyDone:
          return { type: 'copyDone' }
        case FrontendMessageType.CopyFail:
          return { type: 'copyFail', message: parseCStringBody(m.body, 'CopyFail message') }
        case FrontendMessageType.Sync:
          return { type: 'sync' }
        default:
          return { type: 'other', code: m.type, body: m.body }
      }
    })
  }

  /** Columns of the rows that follow, all in text format. */
  rowDescription(fields: { name: string; typeOid?: number }[]): void {
    this.io.write(encodeRowDescription(fields))
  }

  dataRow(values: (string | Buffer | null)[]): void {
    this.io.write(encodeDataRow(values))
  }

  commandComplete(tag: string): void {
    this.io.write(encodeCommandComplete(tag))
  }

  emptyQueryResponse(): void {
    this.io.write(encodeEmptyQueryResponse())
  }

  /** An ErrorResponse. After a FATAL one the caller should close(), as Postgres ends the session. */
  error(opts: ErrorOptions): void {
    const severity = opts.severity ?? 'ERROR'
    const fields: Record<string, string> = {
      S: severity,
      V: severity,
      C: opts.code ?? 'XX000',
      M: opts.message,
    }
    if (opts.detail !== undefined) fields.D = opts.detail
    if (opts.hint !== undefined) fields.H = opts.hint
    this.io.write(encodeErrorResponse(fields))
  }

  notice(message: string): void {
    this.io.write(encodeNoticeResponse({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: message }))
  }

  readyForQuery(status: TransactionStatus = 'I'): void {
    this.io.write(encodeReadyForQuery(status))
  }

  /** Starts COPY TO STDOUT: binary overall format, no columns. */
  copyOutResponse(): void {
    this.io.write(encodeCopyOutResponse())
  }

  /**
   * Starts COPY BOTH (replication streams, pagestream): binary overall format and no columns unless `opts`
   * says otherwise (a walsender announces text format, as Postgres does).
   */
  copyBothResponse(opts: CopyResponseOptions = {}): void {
    this.io.write(encodeCopyBothResponse(opts))
  }

  /** Large payloads are written without a copy, so the caller must not modify `buf` afterwards. */
  copyData(buf: Buffer): void {
    this.io.writeCopyData(buf)
  }

  copyDone(): void {
    this.io.write(encodeCopyDone())
  }

  /** Sends what is buffered now rather than at the end of the current tick. */
  flush(): void {
    this.io.flush()
  }

  /**
   * Resolves once the socket's write buffer is below its highWaterMark (at once when it already is, or when
   * the connection is gone). A caller streaming a lot must await it regularly, or the data piles up here.
   */
  drain(): Promise<void> {
    return this.io.drain()
  }

  /** Sends what is queued and ends the connection. */
  close(): void {
    this.io.close()
  }
}
