import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TEMP_SUFFIX } from '../../src/lib/durable-fs.js'
import { crc32c } from '../../src/postgres/crc32c.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import {
  ControlFileError,
  decodeControlFile,
  encodeControlFile,
  lastLogTerm,
  readControlFile,
  type SafekeeperState,
  SK_CONTROL_FILE_NAME,
  SK_CONTROL_HEADER_SIZE,
  writeControlFile,
} from '../../src/safekeeper/control-file.js'

const FILE = '/sk/tenant/timeline/safekeeper.control'

function state(over: Partial<SafekeeperState> = {}): SafekeeperState {
  return {
    tenantId: 'a'.repeat(32),
    timelineId: 'b'.repeat(32),
    systemId: '18446744073709551615',
    pgTimeline: 1,
    walSegSize: 16 << 20,
    term: 5,
    termHistory: [
      { term: 1, lsn: parseLsn('0/1000000') },
      { term: 3, lsn: parseLsn('0/16B3748') },
      { term: 4, lsn: parseLsn('0/16B3748') },
    ],
    timelineStartLsn: parseLsn('0/1000000'),
    localStartLsn: parseLsn('0/1000000'),
    commitLsn: parseLsn('0/17000A8'),
    truncateLsn: parseLsn('0/1600000'),
    flushRecordLsn: parseLsn('0/17000A8'),
    remoteConsistentLsn: parseLsn('0/1500000'),
    pageserverFeedback: {
      lastReceivedLsn: parseLsn('0/17000A8'),
      diskConsistentLsn: parseLsn('0/1600000'),
      remoteConsistentLsn: parseLsn('0/1500000'),
      currentLogicalSize: 123456789,
      replyTimeUs: 1_700_000_000_000_000,
    },
    computeConnstr: 'host=127.0.0.1 port=55432 user=zenith',
    ...over,
  }
}

/** A file whose payload is `json`, with a correct header and CRC: only the payload checks can fail. */
function withPayload(json: unknown): Buffer {
  const good = encodeControlFile(state())
  const payload = Buffer.from(JSON.stringify(json))
  const out = Buffer.concat([good.subarray(0, SK_CONTROL_HEADER_SIZE), payload])
  out.writeUInt32LE(payload.length, 8)
  out.writeUInt32LE(crc32c(payload), 12)
  return out
}

function payloadOf(s: SafekeeperState): Record<string, unknown> {
  return JSON.parse(encodeControlFile(s).subarray(SK_CONTROL_HEADER_SIZE).toString('utf8'))
}

function decodeError(buf: Buffer): ControlFileError {
  try {
    decodeControlFile(buf, FILE)
  } catch (err) {
    expect(err).toBeInstanceOf(ControlFileError)
    const e = err as ControlFileError
    expect(e.kind).toBe('corruption')
    expect(e.message).toContain(FILE)
    return e
  }
  throw new Error('decoded without an error')
}

describe('safekeeper control file format', () => {
  it('round-trips every field, LSNs written as Postgres prints them', () => {
    for (const s of [
      state(),
      state({ pageserverFeedback: null, computeConnstr: null, termHistory: [], term: 0 }),
    ]) {
      const buf = encodeControlFile(s)
      expect(buf.readUInt32LE(0)).toBe(0x5a534b43)
      expect(buf.readUInt32LE(4)).toBe(1)
      expect(buf.readUInt32LE(8)).toBe(buf.length - SK_CONTROL_HEADER_SIZE)
      expect(decodeControlFile(buf, FILE)).toEqual(s)
    }
    const json = payloadOf(state())
    expect(json.commitLsn).toBe('0/17000A8')
    expect(json.systemId).toBe('18446744073709551615')
    expect(json.termHistory).toEqual([
      { term: 1, lsn: '0/1000000' },
      { term: 3, lsn: '0/16B3748' },
      { term: 4, lsn: '0/16B3748' },
    ])
  })

  it('keeps LSNs above 2^32 exact', () => {
    const big = 0x1f_ffff_ffff_fff0
    const s = state({ localStartLsn: big, commitLsn: big, truncateLsn: big, flushRecordLsn: big })
    expect(decodeControlFile(encodeControlFile(s), FILE)).toEqual(s)
    expect(payloadOf(s).commitLsn).toBe('1FFFFF/FFFFFFF0')
  })

  it('lastLogTerm is the last entry of the term history, 0 without one', () => {
    expect(lastLogTerm(state())).toBe(4)
    expect(lastLogTerm(state({ termHistory: [] }))).toBe(0)
  })

  it('detects a damaged header, naming the file and the offset', () => {
    const good = encodeControlFile(state())
    const at = (offset: number, value: number) => {
      const b = Buffer.from(good)
      b.writeUInt32LE(value, offset)
      return b
    }
    expect(decodeError(at(0, 0x12345678)).message).toMatch(/bad magic 0x12345678 at offset 0/)
    expect(decodeError(at(4, 2)).message).toMatch(/unknown format version 2 at offset 4/)
    expect(decodeError(at(8, good.length)).message).toMatch(/truncated: payload length at offset 8/)
    expect(decodeError(at(8, 10)).message).toMatch(/bytes after the payload/)
    expect(decodeError(at(12, 0)).message).toMatch(/CRC mismatch: stored at offset 12 is 0x00000000/)
    expect(decodeError(good.subarray(0, 10)).message).toMatch(/truncated: 10 bytes/)
    expect(decodeError(good.subarray(0, good.length - 1)).message).toMatch(/truncated/)
  })

  it('detects any flipped payload byte by the CRC', () => {
    const good = encodeControlFile(state())
    for (let i = SK_CONTROL_HEADER_SIZE; i < good.length; i += 7) {
      const b = Buffer.from(good)
      b[i] ^= 0x01
      expect(decodeError(b).message).toMatch(/CRC mismatch/)
    }
  })

  it('rejects a payload with a wrong field, naming the field', () => {
    const json = payloadOf(state())
    const cases: [unknown, RegExp][] = [
      [{ ...json, commitLsn: '0/XYZ' }, /commitLsn: invalid LSN "0\/XYZ"/],
      [{ ...json, commitLsn: 12345 }, /commitLsn is 12345, expected a string/],
      [{ ...json, flushRecordLsn: '200000/0' }, /flushRecordLsn: LSN 200000\/0 is above 2\^53/],
      [{ ...json, term: -1 }, /term is -1, expected a non-negative integer/],
      [{ ...json, pgTimeline: 0 }, /pgTimeline 0 is not a Postgres timeline id/],
      [{ ...json, walSegSize: 1000 }, /walSegSize 1000 is not a power of two/],
      [{ ...json, systemId: 42 }, /systemId is 42, expected a string/],
      [{ ...json, systemId: '18446744073709551616' }, /systemId "18446744073709551616" is not a decimal u64/],
      [{ ...json, tenantId: 'nope' }, /tenantId "nope" is not 32 lower-case hex digits/],
      [{ ...json, termHistory: [{ term: 1, lsn: 'x' }] }, /termHistory\[0\].lsn: invalid LSN/],
      [{ ...json, termHistory: {} }, /termHistory is not an array/],
      [
        { ...json, pageserverFeedback: { lastReceivedLsn: '0/1' } },
        /pageserverFeedback.diskConsistentLsn is undefined/,
      ],
      [{ ...json, computeConnstr: 7 }, /computeConnstr is 7, expected a string/],
      [[], /the payload is not an object/],
    ]
    for (const [payload, message] of cases) expect(decodeError(withPayload(payload)).message).toMatch(message)
    const notJson = withPayload(null)
    const text = Buffer.from('{"term": ')
    const bad = Buffer.concat([notJson.subarray(0, SK_CONTROL_HEADER_SIZE), text])
    bad.writeUInt32LE(text.length, 8)
    bad.writeUInt32LE(crc32c(text), 12)
    expect(decodeError(bad).message).toMatch(/payload at offset 16 is not JSON/)
  })

  it('checks the ordering invariants on decode and on encode', () => {
    const cases: [Partial<SafekeeperState>, RegExp][] = [
      [
        { localStartLsn: parseLsn('0/FFFFFF') },
        /localStartLsn 0\/FFFFFF is below timelineStartLsn 0\/1000000/,
      ],
      [{ truncateLsn: parseLsn('0/1800000') }, /truncateLsn 0\/1800000 is above commitLsn 0\/17000A8/],
      [
        {
          termHistory: [
            { term: 3, lsn: 100 },
            { term: 2, lsn: 200 },
          ],
        },
        /termHistory\[1\] \(term 2 at 0\/C8\) does not follow termHistory\[0\]/,
      ],
      [
        {
          termHistory: [
            { term: 2, lsn: 200 },
            { term: 3, lsn: 100 },
          ],
        },
        /termHistory\[1\] .* LSNs must not go back/,
      ],
      [{ term: 3 }, /termHistory\[2\].term 4 is above term 3/],
    ]
    for (const [over, message] of cases) {
      const bad = state(over)
      expect(() => encodeControlFile(bad)).toThrow(message)
      expect(decodeError(withPayload(rawPayload(bad))).message).toMatch(message)
    }
  })

  it('refuses to encode an LSN above 2^53, naming the field', () => {
    let err: unknown
    try {
      encodeControlFile(state({ commitLsn: 2 ** 53 }))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ControlFileError)
    expect((err as ControlFileError).kind).toBe('bug')
    expect((err as ControlFileError).message).toMatch(/commitLsn 9007199254740992 is out of range/)
  })
})

/** The JSON encodeControlFile would write for `s`, without its checks (to test them on decode). */
function rawPayload(s: SafekeeperState): Record<string, unknown> {
  return {
    ...payloadOf(state()),
    term: s.term,
    termHistory: s.termHistory.map((e) => ({ term: e.term, lsn: formatLsn(e.lsn) })),
    localStartLsn: formatLsn(s.localStartLsn),
    truncateLsn: formatLsn(s.truncateLsn),
  }
}

describe('safekeeper control file on disk', () => {
  let dir = ''
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('writes through a temp file: a leftover temp file never replaces the real one', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sk-control-'))
    const file = path.join(dir, SK_CONTROL_FILE_NAME)
    const first = state()
    writeControlFile(file, first)
    expect(existsSync(file + TEMP_SUFFIX)).toBe(false)
    expect(readControlFile(file)).toEqual(first)

    // A crash in the middle of the next write leaves a torn temp file beside the real one.
    writeFileSync(file + TEMP_SUFFIX, encodeControlFile(state({ term: 9 })).subarray(0, 20))
    expect(readControlFile(file)).toEqual(first)

    const second = state({ term: 6, commitLsn: parseLsn('0/1800000') })
    writeControlFile(file, second)
    expect(readControlFile(file)).toEqual(second)
    expect(existsSync(file + TEMP_SUFFIX)).toBe(false)
    expect(readFileSync(file).subarray(0, 4).readUInt32LE(0)).toBe(0x5a534b43)
  })

  it('reports a missing file as not_found and a damaged one with its path', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sk-control-'))
    const file = path.join(dir, SK_CONTROL_FILE_NAME)
    expect(() => readControlFile(file)).toThrow(expect.objectContaining({ kind: 'not_found' }))
    const buf = encodeControlFile(state())
    buf[buf.length - 2] ^= 0xff
    writeFileSync(file, buf)
    expect(() => readControlFile(file)).toThrow(new RegExp(`${file}: CRC mismatch`))
  })
})
