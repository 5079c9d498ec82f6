/**
 * A Postgres protocol client for what zenith's components need from a server: simple queries, COPY TO
 * STDOUT, and COPY BOTH streams (physical replication from a walsender, pagestream from a pageserver).
 *
 * One operation runs at a time; concurrent calls queue. A COPY BOTH stream keeps the connection until it is
 * finished: the next operation finishes it (ending our side with CopyDone and skipping what the server still
 * sends), so an abandoned stream never wedges the client.
 */
import net from 'node:net'
import { md5PasswordResponse, ScramSession } from './auth.js'
import { type ErrorFields, PgClientError, PgServerError, ProtocolError } from './errors.js'
import { MessageSocket } from './message-socket.js'
import {
  AuthenticationCode,
  BackendMessageType,
  encodeCopyDone,
  encodeCopyFail,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupMessage,
  encodeTerminate,
  type Message,
  parseAuthentication,
  parseBackendKeyData,
  parseCStringBody,
  parseCStringList,
  parseDataRowText,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
} from './messages.js'

const EMPTY = Buffer.alloc(0)

export interface ConnectOptions {
  host: string
  port: number
  user: string
  /** Defaults to the user name, as in libpq. */
  database?: string
  password?: string
  /** Extra startup parameters, e.g. `{ replication: 'true', application_name: 'pageserver' }`. */
  params?: Record<string, string>
  /** Limit for TCP connect + authentication; 30 s by default. */
  connectTimeoutMs?: number
  /** Called for every NoticeResponse; notices are dropped without it. */
  onNotice?: (notice: ErrorFields) => void
}

export interface QueryResult {
  fields: string[]
  /** Values in text format; null for SQL NULL. */
  rows: (string | null)[][]
  commandTag: string
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000
const SCRAM_MECHANISM = 'SCRAM-SHA-256'

const AUTH_METHOD_NAMES: Record<number, string> = {
  [AuthenticationCode.KerberosV5]: 'Kerberos V5',
  [AuthenticationCode.SCMCredential]: 'SCM credentials',
  [AuthenticationCode.GSS]: 'GSSAPI',
  [AuthenticationCode.GSSContinue]: 'GSSAPI',
  [AuthenticationCode.SSPI]: 'SSPI',
}

const T = BackendMessageType

export class PgClient {
  /** ParameterStatus values the server reported (server_version, TimeZone, …), kept up to date. */
  readonly parameters: Record<string, string> = {}
  /** From BackendKeyData, for a CancelRequest. */
  processId = 0
  secretKey = 0
  onNotice: ((notice: ErrorFields) => void) | undefined
  readonly address: string
  /** @internal */
  readonly io: MessageSocket
  private queue: Promise<void> = Promise.resolve()
  /** @internal The COPY BOTH stream that owns the connection until it is finished. */
  stream: CopyBothStream | null = null
  private failure: Error | undefined

  private constructor(socket: net.Socket, opts: ConnectOptions) {
    this.io = new MessageSocket(socket)
    this.address = `${opts.host}:${opts.port}`
    this.onNotice = opts.onNotice
  }

  /**
   * Connects and authenticates (trust, cleartext password, MD5, SCRAM-SHA-256). Rejects with PgServerError
   * when the server refuses us (e.g. 28P01 for a wrong password) and with PgClientError naming host:port for
   * everything else: refused, timed out, closed, an authentication method we do not implement.
   */
  static async connect(opts: ConnectOptions): Promise<PgClient> {
    const socket = new net.Socket()
    const client = new PgClient(socket, opts)
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PgClientError(`could not connect to ${client.address}: timed out after ${timeoutMs} ms`),
          ),
        timeoutMs,
      )
    })
    try {
      await Promise.race([client.handshake(opts), timeout])
      return client
    } catch (err) {
      client.io.destroy()
      if (err instanceof PgServerError || err instanceof PgClientError) throw err
      const reason = err instanceof Error ? err.message : String(err)
      throw new PgClientError(`could not connect to ${client.address}: ${reason}`, { cause: err })
    } finally {
      clearTimeout(timer)
    }
  }

  /** True once close() was called or the connection is gone. */
  get closed(): boolean {
    return this.io.closed
  }

  private async handshake(opts: ConnectOptions): Promise<void> {
    const socket = this.io.socket
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error) => {
        socket.off('error', settle)
        socket.off('close', onClose)
        socket.off('connect', settle)
        if (err) reject(err)
        else resolve()
      }
      // Destroyed by the timeout before connecting: no 'error' follows, only 'close'.
      const onClose = () => settle(new Error('socket closed before the connection was established'))
      socket.once('error', settle)
      socket.once('close', onClose)
      socket.once('connect', settle)
      socket.connect(opts.port, opts.host)
    })
    socket.setNoDelay(true)
    this.io.write(
      encodeStartupMessage({
        user: opts.user,
        database: opts.database ?? opts.user,
        client_encoding: 'UTF8',
        ...opts.params,
      }),
    )
    let scram: ScramSession | null = null
    for (;;) {
      const m = await this.recvOrThrow('during startup')
      switch (m.type) {
        case T.Authentication: {
          const { code, data } = parseAuthentication(m.body)
          if (code === AuthenticationCode.Ok) break
          if (code === AuthenticationCode.CleartextPassword) {
            this.io.write(encodePasswordMessage(this.password(opts, 'password')))
          } else if (code === AuthenticationCode.MD5Password) {
            this.io.write(
              encodePasswordMessage(md5PasswordResponse(this.password(opts, 'md5'), opts.user, data)),
            )
          } else if (code === AuthenticationCode.SASL) {
            const mechanisms = parseCStringList(data, 'SASL mechanism')
            if (!mechanisms.includes(SCRAM_MECHANISM)) {
              throw new PgClientError(
                `${this.address} offers SASL mechanisms ${mechanisms.join(', ')}; only ${SCRAM_MECHANISM} is supported`,
              )
            }
            scram = new ScramSession(this.password(opts, SCRAM_MECHANISM))
            this.io.write(encodeSASLInitialResponse(SCRAM_MECHANISM, Buffer.from(scram.clientFirstMessage())))
          } else if (code === AuthenticationCode.SASLContinue) {
            if (!scram) throw new ProtocolError('SASLContinue without a SASL exchange')
            this.io.write(encodeSASLResponse(Buffer.from(scram.clientFinalMessage(data.toString('utf8')))))
          } else if (code === AuthenticationCode.SASLFinal) {
            if (!scram) throw new ProtocolError('SASLFinal without a SASL exchange')
            scram.verifyServerFinal(data.toString('utf8'))
          } else {
            const name = AUTH_METHOD_NAMES[code] ?? `authentication request code ${code}`
            throw new PgClientError(
              `${this.address} requires ${name} authentication, which PgClient does not support`,
            )
          }
          break
        }
        case T.BackendKeyData: {
          const key = parseBackendKeyData(m.body)
          this.processId = key.processId
          this.secretKey = key.secretKey
          break
        }
        case T.ErrorResponse:
          throw new PgServerError(parseErrorFields(m.body))
        case T.NegotiateProtocolVersion:
          // Only sent when we ask for a newer minor version or _pq_ options, which we never do.
          break
        case T.ReadyForQuery:
          return
        default:
          throw new ProtocolError(`unexpected message ${JSON.stringify(m.type)} during startup`)
      }
    }
  }

  private password(opts: ConnectOptions, method: string): string {
    if (opts.password === undefined) {
      throw new PgClientError(
        `${this.address} requires ${method} authentication for ${opts.user}, but no password was given`,
      )
    }
    return opts.password
  }

  /** @internal The next message that matters to an operation; notices and parameter updates are handled here. */
  async recv(): Promise<Message | null> {
    for (;;) {
      const m = await this.pull(() => this.io.next())
      if (m === null || !this.absorbed(m)) return m
    }
  }

  /**
   * recv() for bulk data: a CopyData message comes as the views of the chunks it arrived in (its
   * payload is `pieces`, `body` is empty), any other joined as recv() gives it.
   */
  private async recvPieces(): Promise<(Message & { pieces?: Buffer[] }) | null> {
    for (;;) {
      const p = await this.pull(() => this.io.nextPieces())
      if (p === null) return null
      if (p.type === T.CopyData) return { type: p.type, body: EMPTY, pieces: p.pieces }
      const m = { type: p.type, body: p.pieces.length === 1 ? p.pieces[0] : Buffer.concat(p.pieces) }
      if (!this.absorbed(m)) return m
    }
  }

  private async pull<M>(next: () => Promise<M | null>): Promise<M | null> {
    try {
      return await next()
    } catch (err) {
      this.fail(err as Error)
      throw err
    }
  }

  /** Notices and parameter updates, which no operation waits for, are handled here. */
  private absorbed(m: Message): boolean {
    if (m.type === T.NoticeResponse) this.onNotice?.(parseErrorFields(m.body))
    else if (m.type === T.ParameterStatus) {
      const { name, value } = parseParameterStatus(m.body)
      this.parameters[name] = value
    } else if (m.type !== T.NotificationResponse) return false
    return true
  }

  private async recvOrThrow(when: string): Promise<Message> {
    const m = await this.recv()
    if (m === null) throw this.connectionLost(when)
    return m
  }

  /** @internal */
  connectionLost(when: string): PgClientError {
    const cause = this.failure ?? this.io.error
    return new PgClientError(
      `connection to ${this.address} closed ${when}${cause ? `: ${cause.message}` : ''}`,
      cause ? { cause } : undefined,
    )
  }

  /** A broken stream cannot be resynchronized: the connection is dropped. */
  private fail(err: Error): void {
    this.failure ??= err
    this.io.destroy()
  }

  /** @internal */
  unexpected(m: Message, when: string): never {
    const err = new ProtocolError(`unexpected message ${JSON.stringify(m.type)} from ${this.address} ${when}`)
    this.fail(err)
    throw err
  }

  /** Waits for the previous operation, finishes an open COPY BOTH stream, and returns the release. */
  private async acquire(): Promise<() => void> {
    const previous = this.queue
    let release!: () => void
    this.queue = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    try {
      if (this.stream) await this.stream.finish()
      if (this.failure) throw this.failure
      if (this.io.closed) throw new PgClientError(`connection to ${this.address} is closed`)
    } catch (err) {
      release()
      throw err
    }
    return release
  }

  /**
   * Runs SQL through the simple query protocol. Several statements give the result of the last one. An
   * ErrorResponse rejects with PgServerError once the server is ready again, so the client stays usable.
   */
  async query(sql: string): Promise<QueryResult> {
    const release = await this.acquire()
    try {
      this.io.write(encodeQuery(sql))
      let fields: string[] | null = null
      let rows: (string | null)[][] = []
      let last: QueryResult = { fields: [], rows: [], commandTag: '' }
      let error: Error | null = null
      for (;;) {
        const m = await this.recv()
        if (m === null) throw error ?? this.connectionLost('during a query')
        switch (m.type) {
          case T.RowDescription:
            fields = parseRowDescription(m.body).map((f) => f.name)
            rows = []
            break
          case T.DataRow:
            rows.push(parseDataRowText(m.body))
            break
          case T.CommandComplete:
            last = { fields: fields ?? [], rows, commandTag: parseCStringBody(m.body, 'command tag') }
            fields = null
            rows = []
            break
          case T.EmptyQueryResponse:
            last = { fields: [], rows: [], commandTag: '' }
            break
          case T.ErrorResponse:
            error ??= new PgServerError(parseErrorFields(m.body))
            break
          case T.CopyInResponse:
            this.io.write(encodeCopyFail('PgClient.query() does not support COPY FROM STDIN'))
            break
          case T.CopyOutResponse:
            error ??= new PgClientError('the query started COPY TO STDOUT: use copyOut() for it')
            break
          case T.CopyBothResponse:
            this.io.write(encodeCopyDone())
            error ??= new PgClientError('the query started COPY BOTH: use copyBoth() for it')
            break
          case T.CopyData:
          case T.CopyDone:
            break
          case T.ReadyForQuery:
            if (error) throw error
            return last
          default:
            this.unexpected(m, 'in a query result')
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err)
      throw err
    } finally {
      release()
    }
  }

  /**
   * Runs a query answered with CopyOutResponse and yields the CopyData payloads, each a view of received
   * bytes (copy it to keep it past the next iteration if memory matters). Stopping early skips the rest of
   * the copy, as the protocol has no way to abort it short of a cancel request.
   */
  copyOut(sql: string): AsyncIterable<Buffer> {
    return { [Symbol.asyncIterator]: () => this.copyOutPayloads(sql, false) }
  }

  /**
   * copyOut() for a byte stream (a tar, say) whose CopyData boundaries mean nothing: the bytes come as
   * views of the chunks the socket read, so a payload that spans chunks is never copied to be joined.
   */
  copyOutBytes(sql: string): AsyncIterable<Buffer> {
    return { [Symbol.asyncIterator]: () => this.copyOutPayloads(sql, true) }
  }

  private async *copyOutPayloads(sql: string, asPieces: boolean): AsyncGenerator<Buffer> {
    const release = await this.acquire()
    let ready = false
    try {
      this.io.write(encodeQuery(sql))
      let error: Error | null = null
      let copying = false
      let sawCopy = false
      for (;;) {
        const m = asPieces ? await this.recvPieces() : await this.recv()
        if (m === null) throw error ?? this.connectionLost('during COPY TO STDOUT')
        switch (m.type) {
          case T.CopyOutResponse:
            copying = true
            sawCopy = true
            break
          case T.CopyData:
            if (copying) for (const piece of (m as { pieces?: Buffer[] }).pieces ?? [m.body]) yield piece
            break
          case T.CopyDone:
            copying = false
            break
          case T.ErrorResponse:
            copying = false
            error ??= new PgServerError(parseErrorFields(m.body))
            break
          case T.CopyInResponse:
            this.io.write(encodeCopyFail('PgClient.copyOut() does not support COPY FROM STDIN'))
            break
          case T.CopyBothResponse:
            this.io.write(encodeCopyDone())
            error ??= new PgClientError('the query started COPY BOTH: use copyBoth() for it')
            break
          case T.RowDescription:
          case T.DataRow:
          case T.CommandComplete:
          case T.EmptyQueryResponse:
            break
          case T.ReadyForQuery:
            ready = true
            if (error) throw error
            if (!sawCopy) throw new PgClientError('copyOut(): the query did not start COPY TO STDOUT')
            return
          default:
            this.unexpected(m, 'during COPY TO STDOUT')
        }
      }
    } finally {
      if (!ready && !this.io.closed && !this.failure) await this.skipToReady().catch(() => {})
      release()
    }
  }

  /** @internal Reads and drops messages up to ReadyForQuery, returning the first error seen. */
  async skipToReady(): Promise<PgServerError | null> {
    let error: PgServerError | null = null
    for (;;) {
      const m = await this.recv()
      if (m === null || m.type === T.ReadyForQuery) return error
      if (m.type === T.ErrorResponse) error ??= new PgServerError(parseErrorFields(m.body))
    }
  }

  /**
   * Runs a query answered with CopyBothResponse (START_REPLICATION, pagestream) and returns the stream.
   * Rejects with PgServerError when the server answers with an error instead.
   */
  async copyBoth(sql: string): Promise<CopyBothStream> {
    const release = await this.acquire()
    try {
      this.io.write(encodeQuery(sql))
      let error: Error | null = null
      for (;;) {
        const m = await this.recv()
        if (m === null) throw error ?? this.connectionLost('while starting COPY BOTH')
        switch (m.type) {
          case T.CopyBothResponse:
            this.stream = new CopyBothStream(this)
            return this.stream
          case T.ErrorResponse:
            error ??= new PgServerError(parseErrorFields(m.body))
            break
          case T.CopyInResponse:
            this.io.write(encodeCopyFail('PgClient.copyBoth() does not support COPY FROM STDIN'))
            break
          case T.CopyOutResponse:
            error ??= new PgClientError('the query started COPY TO STDOUT: use copyOut() for it')
            break
          case T.RowDescription:
          case T.DataRow:
          case T.CommandComplete:
          case T.EmptyQueryResponse:
          case T.CopyData:
          case T.CopyDone:
            break
          case T.ReadyForQuery:
            throw error ?? new PgClientError('copyBoth(): the query did not start COPY BOTH')
          default:
            this.unexpected(m, 'while starting COPY BOTH')
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err)
      throw err
    } finally {
      release()
    }
  }

  /** Sends Terminate and closes the connection; operations still waiting fail with PgClientError. */
  async close(): Promise<void> {
    const socket = this.io.socket
    if (!this.io.closed) this.io.write(encodeTerminate())
    this.io.close()
    if (socket.destroyed) return
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  }
}

/**
 * A COPY BOTH exchange: iterate it for the server's CopyData payloads, send() ours, end() our side. The
 * iteration ends when the server ends its side (CopyDone) or the connection ends, and throws PgServerError
 * when the server reports an error. After the server's CopyDone, end() lets it finish the command.
 */
export class CopyBothStream implements AsyncIterable<Buffer> {
  private clientDone = false
  private serverDone = false
  private settled = false
  private iterating = false
  private iterationWaiters: (() => void)[] = []
  /** An ErrorResponse the server sent; iteration throws it. */
  error: PgServerError | null = null

  constructor(private readonly client: PgClient) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.messages()
  }

  /** The server's CopyData payloads; each is a view of received bytes, valid as long as it is referenced. */
  async *messages(): AsyncGenerator<Buffer> {
    if (this.iterating) throw new PgClientError('this COPY BOTH stream is already being iterated')
    this.iterating = true
    try {
      for (;;) {
        if (this.settled) {
          if (this.error) throw this.error
          return
        }
        // The server has ended its side and waits for our CopyDone before it says anything else.
        if (this.serverDone && !this.clientDone) return
        const m = await this.client.recv()
        if (m === null) {
          this.settle()
          continue
        }
        switch (m.type) {
          case T.CopyData:
            if (!this.serverDone) yield m.body
            break
          case T.CopyDone:
            this.serverDone = true
            break
          case T.ErrorResponse:
            // The server has left copy mode; ReadyForQuery (or the end of the connection) follows.
            this.error ??= new PgServerError(parseErrorFields(m.body))
            break
          case T.RowDescription:
          case T.DataRow:
          case T.CommandComplete:
            // The result that may follow a copy, e.g. the next timeline after START_REPLICATION.
            break
          case T.ReadyForQuery:
            this.settle()
            break
          default:
            this.client.unexpected(m, 'during COPY BOTH')
        }
      }
    } finally {
      this.iterating = false
      const waiters = this.iterationWaiters
      this.iterationWaiters = []
      for (const w of waiters) w()
    }
  }

  /** Sends a CopyData message. Large payloads are written without a copy: do not modify them afterwards. */
  send(buf: Buffer): void {
    if (this.clientDone) throw new PgClientError('send() after end() on a COPY BOTH stream')
    this.client.io.writeCopyData(buf)
  }

  /** Ends our side with CopyDone; the server then ends its side and finishes the command. */
  end(): void {
    if (this.clientDone || this.settled) return
    this.clientDone = true
    this.client.io.write(encodeCopyDone())
  }

  /** Resolves once the socket can take more data (for senders of many messages). */
  drain(): Promise<void> {
    return this.client.io.drain()
  }

  /** @internal Ends the exchange and skips what the server still sends, up to ReadyForQuery. */
  async finish(): Promise<void> {
    while (this.iterating) await new Promise<void>((resolve) => this.iterationWaiters.push(resolve))
    if (!this.settled) {
      this.end()
      const error = await this.client.skipToReady()
      this.error ??= error
      this.settle()
    }
  }

  private settle(): void {
    this.settled = true
    if (this.client.stream === this) this.client.stream = null
  }
}
