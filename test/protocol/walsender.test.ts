/**
 * The walsender primitives behind test/harness/walsender.ts, talked to by our own PgClient as the
 * pageserver's WAL receiver talks to a compute, and by a raw socket that checks each message against what
 * a real Postgres 15 walsender sends.
 */
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PgClient } from '../../src/protocol/client.js'
import { PgServerError } from '../../src/protocol/errors.js'
import {
  encodeCopyDone,
  encodeQuery,
  encodeStartupMessage,
  type Message,
  MessageReader,
  parseCStringBody,
  parseRowDescription,
} from '../../src/protocol/messages.js'
import {
  encodeStandbyStatusUpdate,
  parseIdentifySystem,
  parseReplicationMessage,
} from '../../src/protocol/replication.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { startTestWalSender, type TestWalSender } from '../harness/walsender.js'

const fixture = loadWalFixture()

let sender: TestWalSender

beforeAll(async () => {
  sender = await startTestWalSender(fixture.dir)
})

afterAll(async () => {
  await sender?.close()
})

function connect(params: Record<string, string> = { replication: 'true' }): Promise<PgClient> {
  return PgClient.connect({ host: '127.0.0.1', port: sender.port, user: 'postgres', params })
}

/** Byte1 'h', Int64 clock, Int32 xmin, Int32 xmin epoch, Int32 catalog_xmin, Int32 catalog_xmin epoch. */
function hotStandbyFeedback(xmin: number): Buffer {
  const buf = Buffer.alloc(25)
  buf.write('h', 0)
  buf.writeBigInt64BE(99n, 1)
  buf.writeUInt32BE(xmin, 9)
  buf.writeUInt32BE(1, 13)
  return buf
}

describe('walsender primitives with PgClient', () => {
  it('serves IDENTIFY_SYSTEM, SHOW and a whole replication stream, then more commands', async () => {
    const client = await connect()
    try {
      const system = parseIdentifySystem(await client.query('IDENTIFY_SYSTEM'))
      expect(system).toEqual({
        systemId: sender.systemId,
        timeline: 1,
        xlogpos: sender.flushLsn,
        dbname: null,
      })
      expect((await client.query('SHOW wal_segment_size')).rows).toEqual([['1MB']])

      const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${fixture.start}`)
      const received: Buffer[] = []
      let pos = sender.start
      let keepalives = 0
      let ended = false
      const report = () => stream.send(encodeStandbyStatusUpdate({ write: pos, flush: pos, apply: 0 }))
      stream.send(hotStandbyFeedback(730))
      for await (const payload of stream) {
        const m = parseReplicationMessage(payload)
        if (m.kind === 'xlogData') {
          expect(m.walStart).toBe(pos)
          expect(m.walEnd).toBeGreaterThanOrEqual(m.walStart + m.data.length)
          received.push(Buffer.from(m.data))
          pos += m.data.length
        } else {
          keepalives++
          expect(m.walEnd).toBe(pos)
          if (m.replyRequested && !ended) report()
        }
        if (pos === sender.end && !ended) {
          report()
          stream.end()
          ended = true
        }
      }
      expect(Buffer.concat(received).equals(fixture.bytes())).toBe(true)
      expect(keepalives).toBeGreaterThan(1)
      expect(sender.feedback).toEqual([
        { clockUs: 99n, xmin: 730, xminEpoch: 1, catalogXmin: 0, catalogXminEpoch: 0 },
      ])
      expect(sender.statuses.at(-1)?.flush).toBe(sender.end)

      // After START_STREAMING and START_REPLICATION complete, the session takes commands again.
      expect(parseIdentifySystem(await client.query('IDENTIFY_SYSTEM')).xlogpos).toBe(sender.end)
    } finally {
      await client.close()
    }
    expect(sender.errors).toEqual([])
  })

  it('answers SQL, bad syntax and unknown parameters with the SQLSTATEs Postgres uses', async () => {
    const client = await connect()
    try {
      const code = (sql: string) =>
        client.query(sql).then(
          () => 'ok',
          (err: unknown) => (err instanceof PgServerError ? err.code : String(err)),
        )
      expect(await code('SELECT 1')).toBe('0A000')
      expect(await code('BASE_BACKUP')).toBe('0A000')
      expect(await code('START_REPLICATION 0/XYZ')).toBe('42601')
      expect(await code('TIMELINE_HISTORY 0')).toBe('42601')
      expect(await code('TIMELINE_HISTORY 1')).toBe('58P01')
      expect(await code('SHOW shared_buffers')).toBe('42704')
      expect(await code('START_REPLICATION 0/700000 TIMELINE 2')).toBe('XX000')
      expect(await code('show data_directory_mode;')).toBe('ok')
    } finally {
      await client.close()
    }
  })

  it('refuses a connection that is not a physical replication one', async () => {
    const client = await connect({})
    await expect(client.query('IDENTIFY_SYSTEM')).rejects.toThrow(/replication connections only/)
    await client.close()
  })
})

/** A client that sees every message, to compare our answers with what Postgres 15 sends. */
async function rawSession(fn: (send: (buf: Buffer) => void, next: () => Promise<Message>) => Promise<void>) {
  const socket = net.connect(sender.port, '127.0.0.1')
  const reader = new MessageReader()
  let waiter: (() => void) | null = null
  socket.on('data', (chunk) => {
    reader.push(chunk)
    waiter?.()
  })
  const next = async (): Promise<Message> => {
    for (;;) {
      const m = reader.next()
      if (m) return m
      await new Promise<void>((resolve) => (waiter = resolve))
    }
  }
  try {
    socket.write(encodeStartupMessage({ user: 'postgres', database: 'replication', replication: 'true' }))
    while ((await next()).type !== 'Z') {}
    await fn((buf) => socket.write(buf), next)
  } finally {
    socket.destroy()
  }
}

describe('walsender answers, message by message', () => {
  it('types IDENTIFY_SYSTEM columns as Postgres 15 does', async () => {
    await rawSession(async (send, next) => {
      send(encodeQuery('IDENTIFY_SYSTEM'))
      const desc = await next()
      expect(desc.type).toBe('T')
      // As captured from a real Postgres 15 walsender.
      expect(parseRowDescription(desc.body).map((f) => [f.name, f.typeOid, f.typeSize, f.format])).toEqual([
        ['systemid', 25, -1, 0],
        ['timeline', 23, 4, 0],
        ['xlogpos', 25, -1, 0],
        ['dbname', 25, -1, 0],
      ])
      expect((await next()).type).toBe('D')
      expect(parseCStringBody((await next()).body, 'tag')).toBe('IDENTIFY_SYSTEM')
      expect((await next()).type).toBe('Z')
    })
  })

  it('starts COPY BOTH in text format and ends with CopyDone, START_STREAMING and START_REPLICATION', async () => {
    await rawSession(async (send, next) => {
      send(encodeQuery(`START_REPLICATION ${fixture.start}`))
      const copyBoth = await next()
      expect([copyBoth.type, copyBoth.body.toString('hex')]).toEqual(['W', '000000'])
      send(encodeCopyDone())
      const tail: string[] = []
      for (;;) {
        const m = await next()
        if (m.type === 'd') continue
        tail.push(m.type === 'C' ? `C ${parseCStringBody(m.body, 'tag')}` : m.type)
        if (m.type === 'Z') break
      }
      expect(tail).toEqual(['c', 'C START_STREAMING', 'C START_REPLICATION', 'Z'])
    })
  })
})
