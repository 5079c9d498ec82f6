/**
 * PgServerConnection behind a tiny net.Server, talked to by real psql, by our PgClient and by raw sockets
 * sending garbage: answers must satisfy libpq, COPY must respect backpressure, and bad clients must only
 * ever lose their own connection.
 */
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PgClient } from '../../src/protocol/client.js'
import { PgClientError, PgServerError, ProtocolError } from '../../src/protocol/errors.js'
import {
  encodeCancelRequest,
  encodeGSSENCRequest,
  encodeQuery,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  FrontendMessageType,
  INT4_OID,
  type Message,
  MessageReader,
  parseErrorFields,
} from '../../src/protocol/messages.js'
import { PgServerConnection } from '../../src/protocol/server.js'
import { pgBin } from '../harness/postgres.js'

const COPY_CHUNK = 64 * 1024
const COPY_CHUNKS = 80 // 5 MiB

interface TestServer {
  port: number
  /** Errors the per-connection handlers ended with (ProtocolError for garbage input). */
  errors: unknown[]
  stats: { drainWaits: number; maxWritableLength: number }
  close(): Promise<void>
}

function copyChunk(i: number): Buffer {
  return Buffer.alloc(COPY_CHUNK, i % 251)
}

async function handleQuery(conn: PgServerConnection, sql: string, server: TestServer): Promise<void> {
  const text = sql.trim()
  const show = /^show\s+(\w+)$/i.exec(text)
  if (text === '') {
    conn.emptyQueryResponse()
  } else if (/^select\b/i.test(text)) {
    conn.rowDescription([{ name: 'id', typeOid: INT4_OID }, { name: 'name' }, { name: 'note' }])
    conn.dataRow(['1', 'one', null])
    conn.dataRow(['2', 'twö', Buffer.from('x')])
    conn.commandComplete('SELECT 2')
  } else if (show) {
    conn.rowDescription([{ name: show[1] }])
    conn.dataRow([conn.startupParams?.[show[1]] ?? `value of ${show[1]}`])
    conn.commandComplete('SHOW')
  } else if (/^notice$/i.test(text)) {
    conn.notice('just so you know')
    conn.commandComplete('NOTICE')
  } else if (/^copy big$/i.test(text)) {
    conn.copyOutResponse()
    for (let i = 0; i < COPY_CHUNKS && !conn.closed; i++) {
      conn.copyData(copyChunk(i))
      server.stats.maxWritableLength = Math.max(server.stats.maxWritableLength, conn.socket.writableLength)
      await conn.drain()
    }
    server.stats.drainWaits += conn.drainWaits
    conn.copyDone()
    conn.commandComplete(`COPY ${COPY_CHUNKS}`)
  } else if (/^echo$/i.test(text)) {
    conn.copyBothResponse()
    for (;;) {
      const msg = await conn.next()
      if (msg === null) return
      if (msg.type === 'copyData') {
        conn.copyData(msg.data)
        await conn.drain()
      } else if (msg.type === 'copyDone') {
        conn.copyDone()
        conn.commandComplete('ECHO')
        break
      } else if (msg.type === 'copyFail') {
        conn.error({ message: `COPY failed: ${msg.message}`, code: '57014' })
        break
      }
    }
  } else {
    conn.error({ message: `unknown command: ${text}`, code: '42601', hint: 'try SELECT or SHOW' })
  }
}

async function serve(conn: PgServerConnection, server: TestServer): Promise<void> {
  const params = await conn.startup({ parameters: { zenith_test: 'yes' } })
  if (params === null) return
  for (;;) {
    const msg = await conn.next()
    if (msg === null || msg.type === 'terminate') break
    if (msg.type === 'query') {
      await handleQuery(conn, msg.sql, server)
      conn.readyForQuery()
    } else if (msg.type === 'sync') {
      conn.readyForQuery()
    } else if (msg.type === 'other') {
      // Like Postgres after an error in the extended protocol: the client's Sync brings ReadyForQuery.
      conn.error({ message: `message type "${msg.code}" is not supported`, code: '0A000' })
    }
  }
  conn.close()
}

async function startTestServer(): Promise<TestServer> {
  const sockets = new Set<net.Socket>()
  const netServer = net.createServer()
  const server: TestServer = {
    port: 0,
    errors: [],
    stats: { drainWaits: 0, maxWritableLength: 0 },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => netServer.close(() => resolve()))
    },
  }
  netServer.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    serve(new PgServerConnection(socket), server).catch((err) => server.errors.push(err))
  })
  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject)
    netServer.listen(0, '127.0.0.1', () => resolve())
  })
  server.port = (netServer.address() as net.AddressInfo).port
  return server
}

/** A client that speaks bytes: collects what the server sends until it closes. */
class RawConnection {
  readonly socket: net.Socket
  received = Buffer.alloc(0)
  readonly closed: Promise<void>

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
    })
    this.socket.on('error', () => {})
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve()))
  }

  async waitFor(bytes: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < bytes) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${bytes} bytes (${this.received.length})`)
      await sleep(5)
    }
  }

  /** The typed messages received after `skip` bytes of untyped answers ('N' to encryption requests). */
  messages(skip = 0): Message[] {
    const reader = new MessageReader()
    reader.push(this.received.subarray(skip))
    const out: Message[] = []
    for (let m = reader.next(); m !== null; m = reader.next()) out.push(m)
    return out
  }

  async waitForMessage(type: string, skip = 0): Promise<Message[]> {
    const deadline = Date.now() + 5000
    for (;;) {
      const messages = this.messages(skip)
      if (messages.some((m) => m.type === type)) return messages
      if (Date.now() > deadline)
        throw new Error(`no ${type} message: got ${messages.map((m) => m.type).join('')}`)
      await sleep(5)
    }
  }
}

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server.close()
})

function connect(extra: Partial<Parameters<typeof PgClient.connect>[0]> = {}): Promise<PgClient> {
  return PgClient.connect({
    host: '127.0.0.1',
    port: server.port,
    user: 'postgres',
    params: { application_name: 'pgclient-test' },
    connectTimeoutMs: 10_000,
    ...extra,
  })
}

function psql(sql: string, env: Record<string, string> = {}) {
  return execa(
    pgBin('psql'),
    ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-X', '-A', '-t', '-c', sql],
    {
      reject: false,
      timeout: 30_000,
      env: { LC_ALL: 'C', ...env },
    },
  )
}

describe('PgServerConnection with psql', () => {
  it('answers psql queries after declining its SSL request', async () => {
    const shown = await psql('show application_name', { PGSSLMODE: 'prefer' })
    expect(shown.stderr).toBe('')
    expect(shown.exitCode).toBe(0)
    expect(shown.stdout).toBe('psql')

    const selected = await psql('SELECT anything', { PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer' })
    expect(selected.exitCode).toBe(0)
    expect(selected.stdout).toBe('1|one|\n2|twö|x')

    const shownX = await psql('show x', { PGSSLMODE: 'disable' })
    expect(shownX.stdout).toBe('value of x')
  })

  it('reports errors to psql and survives a psql that insists on SSL', async () => {
    const bad = await psql('frobnicate')
    expect(bad.exitCode).toBe(1)
    expect(bad.stderr).toContain('ERROR:  unknown command: frobnicate')
    expect(bad.stderr).toContain('HINT:  try SELECT or SHOW')

    const ssl = await psql('show x', { PGSSLMODE: 'require' })
    expect(ssl.exitCode).toBe(2)
    expect(ssl.stderr).toMatch(/server does not support SSL/)
    expect((await psql('show x')).stdout).toBe('value of x')
  })
})

describe('PgServerConnection with PgClient', () => {
  it('serves queries, errors, notices and empty queries on one connection', async () => {
    const notices: string[] = []
    const client = await connect({ onNotice: (n) => notices.push(n.M) })
    try {
      expect(client.parameters.server_version).toBe('15.0 (zenith)')
      expect(client.parameters.zenith_test).toBe('yes')
      expect(client.processId).toBeGreaterThan(0)
      expect(await client.query('SELECT 1')).toEqual({
        fields: ['id', 'name', 'note'],
        rows: [
          ['1', 'one', null],
          ['2', 'twö', 'x'],
        ],
        commandTag: 'SELECT 2',
      })
      expect((await client.query('SHOW application_name')).rows).toEqual([['pgclient-test']])
      const err = await client.query('nonsense').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PgServerError)
      expect(err).toMatchObject({ code: '42601', severity: 'ERROR', hint: 'try SELECT or SHOW' })
      expect((err as Error).message).toBe('unknown command: nonsense')
      expect(await client.query('')).toEqual({ fields: [], rows: [], commandTag: '' })
      await client.query('notice')
      expect(notices).toEqual(['just so you know'])
      // Concurrent calls queue up instead of mixing their messages.
      const results = await Promise.all([
        client.query('SHOW a'),
        client.query('SHOW b'),
        client.query('SELECT'),
      ])
      expect(results.map((r) => r.rows[0][0])).toEqual(['value of a', 'value of b', '1'])
    } finally {
      await client.close()
    }
    expect(client.closed).toBe(true)
  })

  it('streams a 5 MB COPY to a slow consumer without the server buffering it', async () => {
    const client = await connect()
    try {
      const drainWaitsBefore = server.stats.drainWaits
      server.stats.maxWritableLength = 0
      let i = 0
      let bytes = 0
      let maxClientBuffered = 0
      for await (const chunk of client.copyOut('copy big')) {
        // Chunks arrive re-framed by TCP but must carry the server's payloads one by one.
        expect(chunk.length).toBe(COPY_CHUNK)
        expect(chunk[0]).toBe(i % 251)
        expect(chunk[chunk.length - 1]).toBe(i % 251)
        bytes += chunk.length
        i++
        maxClientBuffered = Math.max(maxClientBuffered, client.io.reader.bufferedBytes)
        if (i % 8 === 0) await sleep(25)
      }
      expect(bytes).toBe(COPY_CHUNK * COPY_CHUNKS)
      expect(server.stats.drainWaits - drainWaitsBefore).toBeGreaterThan(0)
      // Without drain() the socket would hold up to all 5 MiB; with it, about one chunk over the mark.
      expect(server.stats.maxWritableLength).toBeLessThan(4 * COPY_CHUNK)
      // The client pauses its socket past 1 MiB of unread data, leaving the rest to TCP flow control.
      expect(maxClientBuffered).toBeLessThan((1 << 20) + 2 * COPY_CHUNK)
      expect((await client.query('SHOW after_copy')).rows).toEqual([['value of after_copy']])

      // As bytes: the same stream, in pieces of the socket's reads rather than the server's payloads.
      const pieces: Buffer[] = []
      for await (const piece of client.copyOutBytes('copy big')) pieces.push(piece)
      const whole = Buffer.concat(pieces)
      expect(whole.length).toBe(COPY_CHUNK * COPY_CHUNKS)
      for (let c = 0; c < COPY_CHUNKS; c++) expect(whole[c * COPY_CHUNK + 17]).toBe(c % 251)
      expect(pieces.some((p) => p.length !== COPY_CHUNK)).toBe(true)
      expect((await client.query('SHOW after_bytes')).rows).toEqual([['value of after_bytes']])

      // Leaving a copy early skips its rest; the connection stays in sync.
      for await (const chunk of client.copyOut('copy big')) {
        expect(chunk.length).toBe(COPY_CHUNK)
        break
      }
      expect((await client.query('SHOW after_break')).rows).toEqual([['value of after_break']])
      await expect(async () => {
        for await (const _ of client.copyOut('nonsense')) expect.unreachable()
      }).rejects.toThrow(PgServerError)
      await expect(async () => {
        for await (const _ of client.copyOut('SELECT 1')) expect.unreachable()
      }).rejects.toThrow(/did not start COPY TO STDOUT/)
    } finally {
      await client.close()
    }
  })

  it('runs a COPY BOTH echo, small and large payloads, and finishes abandoned streams', async () => {
    const client = await connect()
    try {
      const stream = await client.copyBoth('echo')
      const big = Buffer.alloc(1 << 20, 0xab)
      const sent = [...Array.from({ length: 100 }, (_, i) => Buffer.from(`message ${i}`)), big]
      for (const b of sent) stream.send(b)
      const got: Buffer[] = []
      for await (const payload of stream) {
        got.push(Buffer.from(payload))
        if (got.length === sent.length) stream.end()
      }
      expect(got).toHaveLength(sent.length)
      expect(got.slice(0, 100).map((b) => b.toString())).toEqual(sent.slice(0, 100).map((b) => b.toString()))
      expect(got[100].equals(big)).toBe(true)
      expect((await client.query('SHOW after_echo')).rows).toEqual([['value of after_echo']])

      // A stream left open is ended by the next operation.
      const abandoned = await client.copyBoth('echo')
      abandoned.send(Buffer.from('never read'))
      expect((await client.query('SHOW after_abandon')).rows).toEqual([['value of after_abandon']])

      await expect(client.copyBoth('nonsense')).rejects.toMatchObject({ code: '42601' })
      expect((await client.query('SELECT')).commandTag).toBe('SELECT 2')
    } finally {
      await client.close()
    }
  })
})

describe('PgServerConnection with misbehaving clients', () => {
  it('closes a connection that sends garbage instead of a startup packet, and keeps serving', async () => {
    const errorsBefore = server.errors.length
    const raw = new RawConnection(server.port)
    raw.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await raw.closed
    const [fatal] = raw.messages()
    expect(fatal.type).toBe('E')
    expect(parseErrorFields(fatal.body)).toMatchObject({ S: 'FATAL', C: '08P01' })
    expect(parseErrorFields(fatal.body).M).toMatch(/invalid startup packet length/)
    await sleep(20)
    expect(server.errors.slice(errorsBefore).some((e) => e instanceof ProtocolError)).toBe(true)

    const client = await connect()
    expect((await client.query('SHOW still_here')).rows).toEqual([['value of still_here']])
    await client.close()
  })

  it('refuses other protocol versions, bad message lengths and the extended protocol', async () => {
    const v2 = new RawConnection(server.port)
    const packet = encodeStartupMessage({ user: 'postgres' })
    packet.writeUInt32BE(2 << 16, 4)
    v2.socket.write(packet)
    await v2.closed
    expect(parseErrorFields(v2.messages()[0].body)).toMatchObject({ S: 'FATAL', C: '0A000' })

    const noUser = new RawConnection(server.port)
    noUser.socket.write(encodeStartupMessage({ database: 'x' }))
    await noUser.closed
    expect(parseErrorFields(noUser.messages()[0].body)).toMatchObject({ C: '28000' })

    const badLength = new RawConnection(server.port)
    badLength.socket.write(encodeStartupMessage({ user: 'postgres' }))
    await badLength.waitForMessage('Z')
    badLength.socket.write(Buffer.from([FrontendMessageType.Query.charCodeAt(0), 0, 0, 0, 2]))
    await badLength.closed
    const last = badLength.messages().at(-1)!
    expect(last.type).toBe('E')
    expect(parseErrorFields(last.body)).toMatchObject({ S: 'FATAL', C: '08P01' })

    const extended = new RawConnection(server.port)
    extended.socket.write(encodeStartupMessage({ user: 'postgres' }))
    await extended.waitForMessage('Z')
    const start = extended.received.length
    // Parse ('P'): an unnamed statement "SELECT 1" with no parameter types, then Sync.
    const parse = Buffer.from([0x50, 0, 0, 0, 16, 0, ...Buffer.from('SELECT 1'), 0, 0, 0])
    extended.socket.write(Buffer.concat([parse, encodeSync()]))
    await extended.waitForMessage('Z', start)
    const answer = extended.messages(start)
    expect(answer.map((m) => m.type).join('')).toBe('EZ')
    expect(parseErrorFields(answer[0].body)).toMatchObject({ C: '0A000' })
    extended.socket.end()
    await extended.closed
  })

  it('declines GSS and SSL encryption requests and ignores cancel requests', async () => {
    const raw = new RawConnection(server.port)
    raw.socket.write(encodeGSSENCRequest())
    await raw.waitFor(1)
    raw.socket.write(encodeSSLRequest())
    await raw.waitFor(2)
    expect(raw.received.subarray(0, 2).toString()).toBe('NN')
    raw.socket.write(encodeStartupMessage({ user: 'postgres', database: 'db' }))
    const startup = await raw.waitForMessage('Z', 2)
    expect(startup.map((m) => m.type).join('')).toBe('RSSSSSSSKZ')
    raw.socket.write(encodeQuery('SHOW database'))
    const after = await raw.waitForMessage('D', 2)
    expect(after.find((m) => m.type === 'D')!.body.toString()).toContain('db')
    raw.socket.end()
    await raw.closed

    const cancel = new RawConnection(server.port)
    cancel.socket.write(encodeCancelRequest(1, 2))
    await cancel.closed
    expect(cancel.received.length).toBe(0)
  })

  it('gives PgClient a timeout error from a server that never answers the startup packet', async () => {
    const silent = net.createServer()
    const sockets: net.Socket[] = []
    silent.on('connection', (s) => sockets.push(s))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()))
    const port = (silent.address() as net.AddressInfo).port
    try {
      const err = await PgClient.connect({ host: '127.0.0.1', port, user: 'x', connectTimeoutMs: 300 }).catch(
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(PgClientError)
      expect((err as Error).message).toBe(`could not connect to 127.0.0.1:${port}: timed out after 300 ms`)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it('survives clients that vanish mid-stream or mid-message', async () => {
    const client = await connect()
    const iterator = client.copyOut('copy big')[Symbol.asyncIterator]()
    await iterator.next()
    client.io.socket.destroy()
    // What already arrived is still handed out; then the iteration fails.
    const drain = async () => {
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) {}
    }
    await expect(drain()).rejects.toThrow(/closed during COPY TO STDOUT/)
    await sleep(50)

    const partial = new RawConnection(server.port)
    partial.socket.write(encodeStartupMessage({ user: 'postgres' }).subarray(0, 10))
    await sleep(20)
    partial.socket.destroy()

    const again = await connect()
    expect((await again.query('SHOW alive')).rows).toEqual([['value of alive']])
    await again.close()
    // Vanished clients end their connections quietly; only garbage gives errors, and only ProtocolErrors.
    expect(server.errors.filter((e) => !(e instanceof ProtocolError))).toEqual([])
  })
})
