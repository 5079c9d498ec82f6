/**
 * Wire protocol framing and encoders without sockets: encoders round-trip through MessageReader however the
 * bytes are chunked, bad lengths are refused, and the replication payloads match the documented layouts.
 */
import { describe, expect, it } from 'vitest'
import { PG_EPOCH_UNIX_US, pgNowUs } from '../../src/postgres/timestamp.js'
import { ScramSession } from '../../src/protocol/auth.js'
import { ProtocolError } from '../../src/protocol/errors.js'
import {
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeCommandComplete,
  encodeCopyBothResponse,
  encodeCopyData,
  encodeCopyDataHeader,
  encodeCopyDone,
  encodeCopyFail,
  encodeCopyOutResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeGSSENCRequest,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodePasswordMessage,
  encodeQuery,
  encodeReadyForQuery,
  encodeRowDescription,
  encodeSASLInitialResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  INT4_OID,
  type Message,
  MessageReader,
  parseAuthentication,
  parseBackendKeyData,
  parseCStringBody,
  parseCStringList,
  parseDataRow,
  parseDataRowText,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
  parseStartupPacket,
  TEXT_OID,
} from '../../src/protocol/messages.js'
import {
  encodePrimaryKeepalive,
  encodeStandbyStatusUpdate,
  encodeXLogData,
  parseHotStandbyFeedback,
  parseIdentifySystem,
  parsePrimaryKeepalive,
  parseReplicationMessage,
  parseStandbyMessage,
  parseStandbyStatusUpdate,
  parseXLogData,
} from '../../src/protocol/replication.js'
import { randomInt } from '../harness/random.js'

/** A server's answer to a query, and then some, covering every backend encoder. */
function backendStream(): Buffer[] {
  return [
    encodeAuthenticationOk(),
    encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4])),
    encodeAuthenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']),
    encodeParameterStatus('server_version', '15.0 (zenith)'),
    encodeBackendKeyData(4242, -7),
    encodeRowDescription([{ name: 'id', typeOid: INT4_OID, typeSize: 4 }, { name: 'naïve ☃' }]),
    encodeDataRow(['1', 'größe ☃']),
    encodeDataRow([null, '']),
    encodeDataRow([Buffer.from([0, 255, 0]), null]),
    encodeCommandComplete('SELECT 3'),
    encodeEmptyQueryResponse(),
    encodeErrorResponse({ S: 'ERROR', V: 'ERROR', C: '42601', M: 'syntax error', D: 'detail', H: 'hint' }),
    encodeNoticeResponse({ S: 'NOTICE', C: '00000', M: 'note' }),
    encodeCopyOutResponse(),
    encodeCopyData(Buffer.alloc(100_000, 7)),
    encodeCopyData(Buffer.alloc(0)),
    encodeCopyDone(),
    encodeCopyBothResponse({ format: 0, columnFormats: [0, 1] }),
    encodeReadyForQuery('T'),
  ]
}

function readAll(reader: MessageReader): Message[] {
  const out: Message[] = []
  for (let m = reader.next(); m !== null; m = reader.next()) out.push(m)
  return out
}

function expectBackendMessages(messages: Message[]): void {
  expect(messages.map((m) => m.type).join('')).toBe('RRRSKTDDDCIENHddcWZ')
  const [authOk, md5, sasl, status, key, rowDesc, row1, row2, row3, complete, , error, notice, copyOut] =
    messages
  expect(parseAuthentication(authOk.body)).toEqual({ code: 0, data: Buffer.alloc(0) })
  expect(parseAuthentication(md5.body)).toEqual({ code: 5, data: Buffer.from([1, 2, 3, 4]) })
  const saslAuth = parseAuthentication(sasl.body)
  expect(saslAuth.code).toBe(10)
  expect(parseCStringList(saslAuth.data, 'mechanism')).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'])
  expect(parseParameterStatus(status.body)).toEqual({ name: 'server_version', value: '15.0 (zenith)' })
  expect(parseBackendKeyData(key.body)).toEqual({ processId: 4242, secretKey: -7 })
  expect(parseRowDescription(rowDesc.body)).toEqual([
    { name: 'id', tableOid: 0, columnAttr: 0, typeOid: INT4_OID, typeSize: 4, typeModifier: -1, format: 0 },
    {
      name: 'naïve ☃',
      tableOid: 0,
      columnAttr: 0,
      typeOid: TEXT_OID,
      typeSize: -1,
      typeModifier: -1,
      format: 0,
    },
  ])
  expect(parseDataRowText(row1.body)).toEqual(['1', 'größe ☃'])
  expect(parseDataRowText(row2.body)).toEqual([null, ''])
  expect(parseDataRow(row3.body)).toEqual([Buffer.from([0, 255, 0]), null])
  expect(parseCStringBody(complete.body, 'tag')).toBe('SELECT 3')
  expect(parseErrorFields(error.body)).toEqual({
    S: 'ERROR',
    V: 'ERROR',
    C: '42601',
    M: 'syntax error',
    D: 'detail',
    H: 'hint',
  })
  expect(parseErrorFields(notice.body)).toEqual({ S: 'NOTICE', C: '00000', M: 'note' })
  expect([...copyOut.body]).toEqual([1, 0, 0])
  expect(messages[14].body.equals(Buffer.alloc(100_000, 7))).toBe(true)
  expect(messages[15].body.length).toBe(0)
  expect([...messages[17].body]).toEqual([0, 0, 2, 0, 0, 0, 1])
  expect(messages[18].body.toString()).toBe('T')
}

describe('MessageReader', () => {
  it('reads back every backend encoder from one chunk, handing out views of it', () => {
    const stream = Buffer.concat(backendStream())
    const reader = new MessageReader()
    reader.push(stream)
    const messages = readAll(reader)
    expectBackendMessages(messages)
    expect(reader.bufferedBytes).toBe(0)
    // Bodies inside the pushed chunk are not copied.
    for (const m of messages) if (m.body.length > 0) expect(m.body.buffer).toBe(stream.buffer)
  })

  it('reassembles messages split at arbitrary chunk boundaries, also byte by byte', () => {
    const stream = Buffer.concat(backendStream())
    const byteByByte = new MessageReader()
    const got: Message[] = []
    for (let i = 0; i < stream.length; i++) {
      byteByByte.push(stream.subarray(i, i + 1))
      got.push(...readAll(byteByByte))
    }
    expectBackendMessages(got)

    for (let seed = 1; seed <= 50; seed++) {
      const rand = randomInt(seed)
      const reader = new MessageReader()
      const messages: Message[] = []
      for (let pos = 0; pos < stream.length; ) {
        const size = 1 + rand(seed % 2 === 0 ? 16 : 70_000)
        reader.push(stream.subarray(pos, pos + size))
        pos += size
        messages.push(...readAll(reader))
      }
      expectBackendMessages(messages)
      expect(reader.bufferedBytes).toBe(0)
    }
  })

  it('hands out a message body as views of the chunks it spans, never copied, when asked for pieces', () => {
    const payload = Buffer.alloc(200_000)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff
    const stream = Buffer.concat([encodeCopyData(payload), encodeCopyDone()])
    for (const size of [1000, 65_536, 199_999]) {
      const reader = new MessageReader()
      const chunks: Buffer[] = []
      for (let pos = 0; pos < stream.length; pos += size)
        chunks.push(Buffer.from(stream.subarray(pos, pos + size)))
      for (const c of chunks.slice(0, -1)) reader.push(c)
      // The last chunk holds the end of the CopyData: it is not complete before it arrives.
      expect(reader.nextPieces()).toBeNull()
      reader.push(chunks[chunks.length - 1])
      const m = reader.nextPieces()!
      expect(m.type).toBe('d')
      expect(Buffer.concat(m.pieces).equals(payload)).toBe(true)
      expect(m.pieces.length).toBe(Math.ceil((payload.length + 5) / size))
      const buffers = new Set(chunks.map((c) => c.buffer))
      for (const piece of m.pieces) expect(buffers.has(piece.buffer)).toBe(true)
      expect(reader.next()?.type).toBe('c')
      expect(reader.bufferedBytes).toBe(0)
    }
  })

  it('reads frontend messages and startup packets', () => {
    const reader = new MessageReader()
    reader.push(
      Buffer.concat([
        encodeQuery('SELECT 1; SELECT ☃'),
        encodeSync(),
        encodeTerminate(),
        encodePasswordMessage('secret'),
        encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')),
        encodeCopyFail('bad input'),
      ]),
    )
    const messages = readAll(reader)
    expect(messages.map((m) => m.type).join('')).toBe('QSXppf')
    expect(parseCStringBody(messages[0].body, 'sql')).toBe('SELECT 1; SELECT ☃')
    expect(messages[1].body.length).toBe(0)
    expect(parseCStringBody(messages[3].body, 'password')).toBe('secret')
    const sasl = messages[4].body
    expect(parseCStringBody(sasl, 'mechanism')).toBe('SCRAM-SHA-256')
    expect(sasl.readInt32BE(14)).toBe(11)
    expect(sasl.subarray(18).toString()).toBe('n,,n=,r=abc')
    expect(parseCStringBody(messages[5].body, 'message')).toBe('bad input')

    const startup = new MessageReader()
    const packets = [
      encodeSSLRequest(),
      encodeGSSENCRequest(),
      encodeCancelRequest(12, 34),
      encodeStartupMessage({ user: 'postgres', database: 'db', application_name: 'tést' }),
    ]
    const stream = Buffer.concat(packets)
    const parsed = []
    for (let i = 0; i < stream.length; i += 3) {
      startup.push(stream.subarray(i, i + 3))
      for (let p = startup.nextStartup(); p !== null; p = startup.nextStartup()) parsed.push(p)
    }
    expect(parsed.map((p) => p.length)).toEqual(packets.map((p) => p.length))
    expect(parsed.map((p) => parseStartupPacket(p.body))).toEqual([
      { kind: 'ssl' },
      { kind: 'gssenc' },
      { kind: 'cancel', processId: 12, secretKey: 34 },
      {
        kind: 'startup',
        major: 3,
        minor: 0,
        params: { user: 'postgres', database: 'db', application_name: 'tést' },
      },
    ])
    // SSLRequest is the documented 8 bytes: length 8, code 1234 << 16 | 5679.
    expect([...encodeSSLRequest()]).toEqual([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
  })

  it('classifies other protocol versions and refuses malformed startup packets', () => {
    const v2 = Buffer.alloc(4)
    v2.writeUInt32BE(2 << 16)
    expect(parseStartupPacket(v2)).toEqual({ kind: 'unsupported', major: 2, minor: 0 })
    const v31 = Buffer.alloc(4)
    v31.writeUInt32BE((3 << 16) | 1)
    expect(parseStartupPacket(v31)).toEqual({ kind: 'unsupported', major: 3, minor: 1 })
    const body = encodeStartupMessage({ user: 'u' }).subarray(4)
    expect(() => parseStartupPacket(body.subarray(0, body.length - 1))).toThrow(ProtocolError)
    expect(() => parseStartupPacket(Buffer.concat([body, Buffer.from([0])]))).toThrow(/last byte/)
    expect(() => parseStartupPacket(Buffer.from([0, 3]))).toThrow(ProtocolError)
  })

  it('refuses message lengths below 4 or above 1 GiB as soon as the header is in', () => {
    const short = new MessageReader()
    short.push(Buffer.from([0x51, 0, 0, 0, 3]))
    expect(() => short.next()).toThrow(ProtocolError)

    const long = new MessageReader()
    long.push(Buffer.from([0x64, 0x40, 0, 0]))
    expect(long.next()).toBeNull()
    long.push(Buffer.from([1]))
    expect(() => long.next()).toThrow(/between 4 and 1073741824/)

    // Exactly 1 GiB is still a valid length, just not complete yet.
    const max = new MessageReader()
    max.push(Buffer.from([0x64, 0x40, 0, 0, 0]))
    expect(max.next()).toBeNull()

    const garbage = new MessageReader()
    garbage.push(Buffer.from('GET / HTTP/1.1\r\n'))
    expect(() => garbage.nextStartup()).toThrow(/invalid startup packet length/)
    const tiny = new MessageReader()
    tiny.push(Buffer.from([0, 0, 0, 4]))
    expect(() => tiny.nextStartup()).toThrow(ProtocolError)
  })

  it('refuses strings with NUL bytes instead of producing a broken frame', () => {
    expect(() => encodeQuery('SELECT 1\0')).toThrow(ProtocolError)
    expect(() => encodeStartupMessage({ user: 'a\0b' })).toThrow(ProtocolError)
  })

  it('builds CopyData headers for payloads written separately', () => {
    const payload = Buffer.from('hello')
    expect(Buffer.concat([encodeCopyDataHeader(payload.length), payload])).toEqual(encodeCopyData(payload))
  })
})

/** An Int64 field written by hand, big-endian as the replication protocol sends it. */
function u64(value: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(value)
  return b
}

describe('replication messages', () => {
  it('parses XLogData laid out as the protocol documentation describes', () => {
    const wal = Buffer.from('some WAL bytes')
    // Byte1('w'), Int64 walStart, Int64 walEnd, Int64 sendTime, Byten data.
    const payload = Buffer.concat([
      Buffer.from('w'),
      u64(0x1_0000_2000n),
      u64(0x1_0000_3000n),
      u64(123_456_789n),
      wal,
    ])
    const parsed = parseXLogData(payload)
    expect(parsed).toEqual({
      walStart: 0x1_0000_2000,
      walEnd: 0x1_0000_3000,
      sendTimeUs: 123_456_789n,
      data: wal,
    })
    expect(parsed.data.buffer).toBe(payload.buffer)
    expect(encodeXLogData(0x1_0000_2000, 0x1_0000_3000, wal, 123_456_789n)).toEqual(payload)
    expect(parseReplicationMessage(payload).kind).toBe('xlogData')

    expect(() => parseXLogData(payload.subarray(0, 24))).toThrow(ProtocolError)
    expect(() => parseXLogData(Buffer.concat([Buffer.from('k'), payload.subarray(1)]))).toThrow(/XLogData/)
    const huge = Buffer.concat([Buffer.from('w'), u64(1n << 60n), u64(0n), u64(0n)])
    expect(() => parseXLogData(huge)).toThrow(/above 2\^53/)
  })

  it('parses primary keepalives', () => {
    const payload = Buffer.concat([Buffer.from('k'), u64(0x5_0000_0010n), u64(42n), Buffer.from([1])])
    expect(parsePrimaryKeepalive(payload)).toEqual({
      walEnd: 0x5_0000_0010,
      sendTimeUs: 42n,
      replyRequested: true,
    })
    payload[17] = 0
    expect(parseReplicationMessage(payload)).toEqual({
      kind: 'keepalive',
      walEnd: 0x5_0000_0010,
      sendTimeUs: 42n,
      replyRequested: false,
    })
    expect(() => parseReplicationMessage(Buffer.from('x'))).toThrow(/unknown replication message/)
  })

  it('encodes standby status updates byte by byte as documented', () => {
    const buf = encodeStandbyStatusUpdate({
      write: 0x1_2345_6789,
      flush: 0x1_2345_6700,
      apply: 0x10,
      replyRequested: true,
      nowUs: 0x0102_0304_0506_0708n,
    })
    // Byte1('r'), Int64 write, Int64 flush, Int64 apply, Int64 clock, Byte1 replyRequested.
    expect([...buf]).toEqual([
      0x72,
      ...[0, 0, 0, 1, 0x23, 0x45, 0x67, 0x89],
      ...[0, 0, 0, 1, 0x23, 0x45, 0x67, 0x00],
      ...[0, 0, 0, 0, 0, 0, 0, 0x10],
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      1,
    ])
    const now = encodeStandbyStatusUpdate({ write: 0, flush: 0, apply: 0 })
    expect(now[33]).toBe(0)
    const clock = now.readBigInt64BE(25)
    const expected = BigInt(Date.now()) * 1000n - PG_EPOCH_UNIX_US
    expect(clock > expected - 5_000_000n && clock < expected + 5_000_000n).toBe(true)
    // 2000-01-01 is Postgres' epoch: a 2020s clock is between 20 and 40 years of microseconds.
    expect(pgNowUs() > 20n * 365n * 86_400_000_000n && pgNowUs() < 40n * 365n * 86_400_000_000n).toBe(true)
  })

  it('encodes primary keepalives that parse back, with the clock defaulting to now', () => {
    const payload = encodePrimaryKeepalive({ walEnd: 0x5_0000_0010, sendTimeUs: 42n, replyRequested: true })
    expect(payload).toEqual(
      Buffer.concat([Buffer.from('k'), u64(0x5_0000_0010n), u64(42n), Buffer.from([1])]),
    )
    const now = parsePrimaryKeepalive(encodePrimaryKeepalive({ walEnd: 0, replyRequested: false }))
    expect(now.replyRequested).toBe(false)
    expect(Number(pgNowUs() - now.sendTimeUs)).toBeLessThan(5_000_000)
    expect(() => encodePrimaryKeepalive({ walEnd: -1, replyRequested: false })).toThrow(/out of range/)
  })

  it('parses standby status updates as encoded, and dispatches what a receiver sends', () => {
    const status = { write: 0x1_2345_6789, flush: 0x1_2345_6700, apply: 0, replyRequested: true }
    const buf = encodeStandbyStatusUpdate({ ...status, nowUs: 77n })
    expect(parseStandbyStatusUpdate(buf)).toEqual({ ...status, clockUs: 77n })
    expect(parseStandbyMessage(buf)).toEqual({ kind: 'status', ...status, clockUs: 77n })
    expect(() => parseStandbyStatusUpdate(buf.subarray(0, 33))).toThrow(/is 33 bytes, expected 34/)
    expect(() => parseStandbyStatusUpdate(Buffer.alloc(0))).toThrow(/got an empty payload/)
    const huge = Buffer.from(buf)
    huge.writeBigUInt64BE(1n << 60n, 9)
    expect(() => parseStandbyStatusUpdate(huge)).toThrow(/above 2\^53/)
  })

  it('parses hot standby feedback laid out as the protocol documentation describes', () => {
    // Byte1('h'), Int64 clock, Int32 xmin, Int32 xmin epoch, Int32 catalog_xmin, Int32 catalog_xmin epoch.
    const payload = Buffer.concat([
      Buffer.from('h'),
      u64(123n),
      Buffer.from([0, 0, 2, 0xdc, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 2]),
    ])
    const expected = { clockUs: 123n, xmin: 732, xminEpoch: 1, catalogXmin: 0xffff_fffe, catalogXminEpoch: 2 }
    expect(parseHotStandbyFeedback(payload)).toEqual(expected)
    expect(parseStandbyMessage(payload)).toEqual({ kind: 'hotStandbyFeedback', ...expected })
    expect(() => parseHotStandbyFeedback(payload.subarray(0, 24))).toThrow(ProtocolError)
    expect(() => parseStandbyMessage(Buffer.from('Q'))).toThrow(/invalid standby message type "Q"/)
    expect(() => parseStandbyMessage(Buffer.alloc(0))).toThrow(/invalid standby message type ""/)
  })

  it('interprets IDENTIFY_SYSTEM results by column name', () => {
    expect(
      parseIdentifySystem({
        fields: ['systemid', 'timeline', 'xlogpos', 'dbname'],
        rows: [['7301234567890123456', '1', '0/16B3748', null]],
      }),
    ).toEqual({ systemId: '7301234567890123456', timeline: 1, xlogpos: 0x16b3748, dbname: null })
    expect(() => parseIdentifySystem({ fields: ['systemid'], rows: [['1']] })).toThrow(/no timeline column/)
  })
})

describe('SCRAM-SHA-256', () => {
  it('reproduces the RFC 7677 example exchange', () => {
    const scram = new ScramSession('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' })
    expect(scram.clientFirstMessage()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')
    const serverFirst =
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'
    expect(scram.clientFinalMessage(serverFirst)).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    )
    expect(() => scram.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow()
    expect(() => scram.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toThrow(
      /signature/,
    )
  })

  it('refuses a server nonce that does not extend the client nonce', () => {
    const scram = new ScramSession('pw', { nonce: 'abc' })
    expect(() => scram.clientFinalMessage('r=xyz123,s=AAAA,i=4096')).toThrow(/nonce/)
  })
})
