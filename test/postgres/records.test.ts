import { describe, expect, it } from 'vitest'
import { type CheckPoint, encodeCheckPoint } from '../../src/postgres/checkpoint.js'
import { crc32c } from '../../src/postgres/crc32c.js'
import { parseClogRecord, parseCommitTsRecord } from '../../src/postgres/records/clog.js'
import { parseDbaseRecord } from '../../src/postgres/records/dbase.js'
import {
  heapVmClears,
  parseHeapVisible,
  VISIBILITYMAP_ALL_FROZEN,
  VISIBILITYMAP_VALID_BITS,
} from '../../src/postgres/records/heap.js'
import { WalRecordFormatError } from '../../src/postgres/records/main-data.js'
import { MultiXactStatus, parseMultiXactRecord } from '../../src/postgres/records/multixact.js'
import {
  decodeRelMapFile,
  parseRelMapRecord,
  RELMAPPER_FILEMAGIC,
} from '../../src/postgres/records/relmap.js'
import { parseReplOriginRecord } from '../../src/postgres/records/replorigin.js'
import { parseSmgrRecord, SMGR_TRUNCATE_ALL } from '../../src/postgres/records/smgr.js'
import { parseTblspcRecord } from '../../src/postgres/records/tblspc.js'
import {
  parseXactRecord,
  TWOPHASE_MAGIC,
  XACT_XINFO_HAS_AE_LOCKS,
  XACT_XINFO_HAS_DBINFO,
  XACT_XINFO_HAS_DROPPED_STATS,
  XACT_XINFO_HAS_GID,
  XACT_XINFO_HAS_INVALS,
  XACT_XINFO_HAS_ORIGIN,
  XACT_XINFO_HAS_RELFILENODES,
  XACT_XINFO_HAS_SUBXACTS,
  XACT_XINFO_HAS_TWOPHASE,
  type XactCompletion,
  type XactPrepare,
} from '../../src/postgres/records/xact.js'
import { parseXlogRecord } from '../../src/postgres/records/xlog.js'
import { RM_HEAP_ID, RM_HEAP2_ID } from '../../src/postgres/rmgr.js'
import { rng } from '../harness/random.js'

/** Little-endian byte vector builder, so each test reads like the C struct it mirrors. */
class Bytes {
  private readonly parts: Buffer[] = []

  private push(size: number, write: (b: Buffer) => void): this {
    const b = Buffer.alloc(size)
    write(b)
    this.parts.push(b)
    return this
  }

  u8(v: number): this {
    return this.push(1, (b) => b.writeUInt8(v))
  }
  u16(v: number): this {
    return this.push(2, (b) => b.writeUInt16LE(v))
  }
  u32(v: number): this {
    return this.push(4, (b) => b.writeUInt32LE(v >>> 0))
  }
  i32(v: number): this {
    return this.push(4, (b) => b.writeInt32LE(v))
  }
  i64(v: number): this {
    return this.push(8, (b) => b.writeBigInt64LE(BigInt(v)))
  }
  u64(v: bigint): this {
    return this.push(8, (b) => b.writeBigUInt64LE(v))
  }
  cstr(s: string): this {
    this.parts.push(Buffer.from(`${s}\0`))
    return this
  }
  raw(b: Buffer): this {
    this.parts.push(b)
    return this
  }
  zeros(n: number): this {
    return this.push(n, () => {})
  }
  /** Pads to a multiple of 8 bytes, as the 2PC state data does after every section. */
  align8(): this {
    const len = this.length
    return this.zeros((8 - (len % 8)) % 8)
  }
  get length(): number {
    return this.parts.reduce((n, p) => n + p.length, 0)
  }
  build(): Buffer {
    return Buffer.concat(this.parts)
  }
}

function expectFormatError(fn: () => unknown, message?: RegExp): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(WalRecordFormatError)
  if (message) expect((thrown as Error).message).toMatch(message)
}

/** Every proper prefix of a record whose sections are all mandatory must be rejected as too short. */
function expectEveryPrefixRejected(data: Buffer, parse: (d: Buffer) => unknown): void {
  for (let len = 0; len < data.length; len++) expectFormatError(() => parse(data.subarray(0, len)))
}

const XACT_TIME = 769_000_000_123_456
const ALL_COMMIT_SECTIONS =
  XACT_XINFO_HAS_DBINFO |
  XACT_XINFO_HAS_SUBXACTS |
  XACT_XINFO_HAS_RELFILENODES |
  XACT_XINFO_HAS_DROPPED_STATS |
  XACT_XINFO_HAS_INVALS |
  XACT_XINFO_HAS_TWOPHASE |
  XACT_XINFO_HAS_GID |
  XACT_XINFO_HAS_ORIGIN

/** A commit/abort main data with every optional section, in PG15's order. */
function completionBody(xinfo: number, withInvals: boolean): Buffer {
  const b = new Bytes().i64(XACT_TIME).u32(xinfo)
  b.u32(5).u32(1663) // dbinfo
  b.i32(2).u32(741).u32(742) // subxacts
  b.i32(2).u32(1663).u32(5).u32(16390).u32(1664).u32(0).u32(16400) // relfilenodes
  b.i32(1).i32(2).u32(5).u32(16390) // dropped stats: kind, dboid, objoid
  if (withInvals) b.i32(2).raw(Buffer.alloc(32, 0xab)) // two SharedInvalidationMessages
  b.u32(739) // twophase xid
  b.cstr('gid-1') // gid
  b.u64(0x1_0000_2000n).i64(XACT_TIME + 1) // origin
  return b.build()
}

describe('parseXactRecord: commit and abort', () => {
  it('parses a commit without xinfo (only xact_time)', () => {
    const rec = parseXactRecord(0x00, new Bytes().i64(XACT_TIME).build(), 730) as XactCompletion
    expect(rec).toEqual({
      kind: 'commit',
      xid: 730,
      xactTime: XACT_TIME,
      xinfo: 0,
      subxacts: [],
      relfilenodes: [],
      droppedStats: [],
      invalidationCount: 0,
    })
  })

  it('ignores a HAS_INFO-less record that happens to be longer', () => {
    const data = new Bytes().i64(XACT_TIME).u32(0xffffffff).build()
    expect((parseXactRecord(0x00, data, 1) as XactCompletion).xinfo).toBe(0)
  })

  it('parses every optional commit section in order', () => {
    const rec = parseXactRecord(0x80 | 0x01, completionBody(ALL_COMMIT_SECTIONS, true), 735) as XactCompletion
    expect(rec).toEqual({
      kind: 'commit',
      xid: 735,
      xactTime: XACT_TIME,
      xinfo: ALL_COMMIT_SECTIONS,
      dbId: 5,
      tsId: 1663,
      subxacts: [741, 742],
      relfilenodes: [
        { spcNode: 1663, dbNode: 5, relNode: 16390 },
        { spcNode: 1664, dbNode: 0, relNode: 16400 },
      ],
      droppedStats: [{ kind: 2, dbOid: 5, objOid: 16390 }],
      invalidationCount: 2,
      gid: 'gid-1',
      originLsn: 0x1_0000_2000,
      originTimestamp: XACT_TIME + 1,
    })
  })

  it('takes the twophase xid as the affected transaction of COMMIT_PREPARED and ABORT_PREPARED', () => {
    const commit = parseXactRecord(
      0x80 | 0x30,
      completionBody(ALL_COMMIT_SECTIONS, true),
      0,
    ) as XactCompletion
    expect(commit.kind).toBe('commit_prepared')
    expect(commit.xid).toBe(739)
    expect(commit.gid).toBe('gid-1')
    const abort = parseXactRecord(
      0x80 | 0x40,
      completionBody(ALL_COMMIT_SECTIONS, false),
      0,
    ) as XactCompletion
    expect(abort.kind).toBe('abort_prepared')
    expect(abort.xid).toBe(739)
    expect(abort.originLsn).toBe(0x1_0000_2000)
  })

  it('parses an abort: the INVALS bit carries no payload there', () => {
    const rec = parseXactRecord(0xa0, completionBody(ALL_COMMIT_SECTIONS, false), 736) as XactCompletion
    expect(rec.kind).toBe('abort')
    expect(rec.xid).toBe(736)
    expect(rec.invalidationCount).toBe(0)
    expect(rec.subxacts).toEqual([741, 742])
    expect(rec.droppedStats).toEqual([{ kind: 2, dbOid: 5, objOid: 16390 }])
    expect(rec.gid).toBe('gid-1')
    expect(rec.originTimestamp).toBe(XACT_TIME + 1)
  })

  it('reads a GID only inside the two-phase section, and AE_LOCKS has no payload', () => {
    const xinfo = XACT_XINFO_HAS_GID | XACT_XINFO_HAS_AE_LOCKS | XACT_XINFO_HAS_SUBXACTS
    const data = new Bytes().i64(XACT_TIME).u32(xinfo).i32(1).u32(900).build()
    const rec = parseXactRecord(0x80, data, 899) as XactCompletion
    expect(rec.subxacts).toEqual([900])
    expect(rec.gid).toBeUndefined()
  })

  it('parses each section alone', () => {
    const only = (xinfo: number, body: Bytes) =>
      parseXactRecord(0x80, new Bytes().i64(1).u32(xinfo).raw(body.build()).build(), 1) as XactCompletion
    expect(only(XACT_XINFO_HAS_DBINFO, new Bytes().u32(16384).u32(1663))).toMatchObject({
      dbId: 16384,
      tsId: 1663,
    })
    expect(only(XACT_XINFO_HAS_SUBXACTS, new Bytes().i32(0)).subxacts).toEqual([])
    expect(only(XACT_XINFO_HAS_RELFILENODES, new Bytes().i32(1).u32(1).u32(2).u32(3)).relfilenodes).toEqual([
      { spcNode: 1, dbNode: 2, relNode: 3 },
    ])
    expect(only(XACT_XINFO_HAS_INVALS, new Bytes().i32(1).zeros(16)).invalidationCount).toBe(1)
    expect(only(XACT_XINFO_HAS_ORIGIN, new Bytes().u64(7n).i64(-5))).toMatchObject({
      originLsn: 7,
      originTimestamp: -5,
    })
  })

  it('rejects every truncation of a full commit, abort and prepared record', () => {
    expectEveryPrefixRejected(completionBody(ALL_COMMIT_SECTIONS, true), (d) => parseXactRecord(0x80, d, 1))
    expectEveryPrefixRejected(completionBody(ALL_COMMIT_SECTIONS, false), (d) => parseXactRecord(0xa0, d, 1))
    expectEveryPrefixRejected(completionBody(ALL_COMMIT_SECTIONS, true), (d) => parseXactRecord(0xb0, d, 1))
  })

  it('rejects counts that overrun the data or are negative, without allocating for them', () => {
    const sub = (n: number) => new Bytes().i64(1).u32(XACT_XINFO_HAS_SUBXACTS).i32(n).u32(1).build()
    expectFormatError(() => parseXactRecord(0x80, sub(2), 1), /XACT COMMIT: 2 subxact xids need 8 bytes/)
    expectFormatError(() => parseXactRecord(0x80, sub(0x7fffffff), 1), /subxact xids/)
    expectFormatError(() => parseXactRecord(0x80, sub(-1), 1), /count -1 is negative/)
    const rels = new Bytes().i64(1).u32(XACT_XINFO_HAS_RELFILENODES).i32(1).u32(1).u32(2).build()
    expectFormatError(() => parseXactRecord(0x20 | 0x80, rels, 1), /XACT ABORT: 1 relfilenodes need 12 bytes/)
    const stats = new Bytes().i64(1).u32(XACT_XINFO_HAS_DROPPED_STATS).i32(0x10000000).build()
    expectFormatError(() => parseXactRecord(0x80, stats, 1), /dropped stats/)
    const invals = new Bytes().i64(1).u32(XACT_XINFO_HAS_INVALS).i32(3).zeros(47).build()
    expectFormatError(() => parseXactRecord(0x80, invals, 1), /invalidation messages/)
  })

  it('rejects a GID without its NUL and a *_PREPARED record without a twophase xid', () => {
    const noNul = new Bytes()
      .i64(1)
      .u32(XACT_XINFO_HAS_TWOPHASE | XACT_XINFO_HAS_GID)
      .u32(5)
      .raw(Buffer.from('abc'))
      .build()
    expectFormatError(() => parseXactRecord(0x80, noNul, 1), /gid at offset 16 has no terminating NUL/)
    expectFormatError(
      () => parseXactRecord(0x30, new Bytes().i64(1).build(), 0),
      /COMMIT_PREPARED: xinfo lacks XACT_XINFO_HAS_TWOPHASE/,
    )
  })

  it('rejects an origin LSN beyond 2^53 as a format error', () => {
    const data = new Bytes().i64(1).u32(XACT_XINFO_HAS_ORIGIN).u64(0xffff_ffff_0000_0000n).i64(0).build()
    expectFormatError(() => parseXactRecord(0x80, data, 1), /origin_lsn/)
  })
})

/** 2PC state data as EndPrepare writes it: every section MAXALIGNed, then the end sentinel record. */
function prepareData(opts: { gid: string; totalLenDelta?: number; magic?: number }): Buffer {
  const body = new Bytes()
  body.raw(Buffer.from(`${opts.gid}\0`)).align8()
  body.u32(801).u32(802).u32(803).align8() // subxacts
  body.u32(1663).u32(5).u32(16500).align8() // commit rels
  body.u32(1663).u32(5).u32(16501).u32(1663).u32(5).u32(16502).align8() // abort rels
  body.i32(2).u32(5).u32(16500).align8() // commit stats
  body.align8() // no abort stats
  body.raw(Buffer.alloc(16, 0x11)).align8() // one inval message
  body.u32(0).u8(0).u8(0).u16(0) // TwoPhaseRecordOnDisk end sentinel (len, rmid, info)
  const rest = body.build()
  const header = new Bytes()
    .u32(opts.magic ?? TWOPHASE_MAGIC)
    .u32(72 + rest.length + 4 + (opts.totalLenDelta ?? 0))
    .u32(800) // xid
    .u32(5) // database
    .i64(XACT_TIME)
    .u32(10) // owner
    .i32(3) // nsubxacts
    .i32(1) // ncommitrels
    .i32(2) // nabortrels
    .i32(1) // ncommitstats
    .i32(0) // nabortstats
    .i32(1) // ninvalmsgs
    .u8(1) // initfileinval
    .u8(0)
    .u16(opts.gid.length + 1)
    .u64(0x2000n)
    .i64(XACT_TIME - 1)
  expect(header.length).toBe(72)
  return Buffer.concat([header.build(), rest])
}

describe('parseXactRecord: prepare, assignment, invalidations', () => {
  it('parses the 2PC state header and its MAXALIGNed sections', () => {
    const data = prepareData({ gid: 'tx-commit' })
    const rec = parseXactRecord(0x10, data, 800) as XactPrepare
    expect(rec).toEqual({
      kind: 'prepare',
      xid: 800,
      database: 5,
      preparedAt: XACT_TIME,
      owner: 10,
      gid: 'tx-commit',
      subxacts: [801, 802, 803],
      commitRels: [{ spcNode: 1663, dbNode: 5, relNode: 16500 }],
      abortRels: [
        { spcNode: 1663, dbNode: 5, relNode: 16501 },
        { spcNode: 1663, dbNode: 5, relNode: 16502 },
      ],
      commitStats: [{ kind: 2, dbOid: 5, objOid: 16500 }],
      abortStats: [],
      invalidationCount: 1,
      initFileInval: true,
      originLsn: 0x2000,
      originTimestamp: XACT_TIME - 1,
      stateData: data,
    })
  })

  it('accepts a GID whose length is already a multiple of 8 (no padding)', () => {
    expect((parseXactRecord(0x10, prepareData({ gid: 'seven77' }), 800) as XactPrepare).gid).toBe('seven77')
  })

  it('rejects a wrong magic, a total_len that disagrees with the data, and truncations', () => {
    expectFormatError(() => parseXactRecord(0x10, prepareData({ gid: 'g', magic: 0x57f94533 }), 1), /magic/)
    expectFormatError(
      () => parseXactRecord(0x10, prepareData({ gid: 'g', totalLenDelta: 8 }), 1),
      /total_len/,
    )
    const full = prepareData({ gid: 'g' })
    for (let len = 0; len < 72 + 8 + 16; len++) {
      const cut = Buffer.from(full.subarray(0, len))
      if (len >= 8) cut.writeUInt32LE(len + 4, 4)
      expectFormatError(() => parseXactRecord(0x10, cut, 1))
    }
  })

  it('rejects a GID that lacks its NUL within gidlen', () => {
    const data = prepareData({ gid: 'abcdefg' })
    data[72 + 7] = 0x41
    expectFormatError(() => parseXactRecord(0x10, data, 1), /gid of gidlen 8 has no terminating NUL/)
  })

  it('parses ASSIGNMENT and INVALIDATIONS, and rejects unknown ops', () => {
    const assignment = new Bytes().u32(700).i32(3).u32(701).u32(702).u32(703).build()
    expect(parseXactRecord(0x50, assignment, 700)).toEqual({
      kind: 'assignment',
      xtop: 700,
      subxacts: [701, 702, 703],
    })
    expectEveryPrefixRejected(assignment, (d) => parseXactRecord(0x50, d, 700))
    const invals = new Bytes().i32(2).zeros(32).build()
    expect(parseXactRecord(0x60, invals, 1)).toEqual({ kind: 'invalidations', invalidationCount: 2 })
    expectFormatError(() => parseXactRecord(0x60, invals.subarray(0, 20), 1), /invalidation messages/)
    expectFormatError(
      () => parseXactRecord(0x70, Buffer.alloc(64), 1),
      /XACT: xl_info 0x70 is not a known XACT op/,
    )
  })
})

describe('CLOG and CommitTs', () => {
  it('parses ZEROPAGE and TRUNCATE', () => {
    expect(parseClogRecord(0x00, new Bytes().i32(3).build())).toEqual({ kind: 'zeropage', pageno: 3 })
    const trunc = new Bytes().i32(64).u32(2_100_000).u32(5).build()
    expect(parseClogRecord(0x10, trunc)).toEqual({
      kind: 'truncate',
      pageno: 64,
      oldestXact: 2_100_000,
      oldestXactDb: 5,
    })
    expectEveryPrefixRejected(trunc, (d) => parseClogRecord(0x10, d))
    expectFormatError(() => parseClogRecord(0x00, Buffer.alloc(3)), /CLOG ZEROPAGE: pageno needs 4 bytes/)
    expectFormatError(() => parseClogRecord(0x20, Buffer.alloc(12)), /CLOG/)
  })

  it('parses CommitTs ZEROPAGE and TRUNCATE', () => {
    expect(parseCommitTsRecord(0x00, new Bytes().i32(9).build())).toEqual({ kind: 'zeropage', pageno: 9 })
    const trunc = new Bytes().i32(2).u32(4000).build()
    expect(parseCommitTsRecord(0x10, trunc)).toEqual({ kind: 'truncate', pageno: 2, oldestXid: 4000 })
    expectEveryPrefixRejected(trunc, (d) => parseCommitTsRecord(0x10, d))
    expectFormatError(() => parseCommitTsRecord(0x30, trunc), /COMMIT_TS/)
  })
})

describe('ReplicationOrigin', () => {
  it('parses SET (sizeof xl_replorigin_set is 16: 5 pad bytes follow force) and DROP', () => {
    const set = new Bytes().u64(0x2_0000_0a28n).u16(7).u8(1).zeros(5).build()
    expect(parseReplOriginRecord(0x00, set)).toEqual({
      kind: 'set',
      remoteLsn: 0x2_0000_0a28,
      nodeId: 7,
      force: true,
    })
    expectEveryPrefixRejected(set.subarray(0, 11), (d) => parseReplOriginRecord(0x00, d))
    expect(parseReplOriginRecord(0x10, new Bytes().u16(7).build())).toEqual({ kind: 'drop', nodeId: 7 })
    expectFormatError(() => parseReplOriginRecord(0x10, Buffer.alloc(1)), /REPLORIGIN DROP/)
    expectFormatError(() => parseReplOriginRecord(0x20, set), /REPLORIGIN/)
  })
})

describe('MultiXact', () => {
  it('parses page zeroing, CREATE_ID with members and TRUNCATE_ID', () => {
    expect(parseMultiXactRecord(0x00, new Bytes().i32(1).build())).toEqual({
      kind: 'zero_off_page',
      pageno: 1,
    })
    expect(parseMultiXactRecord(0x10, new Bytes().i32(2).build())).toEqual({
      kind: 'zero_mem_page',
      pageno: 2,
    })
    const create = new Bytes()
      .u32(7)
      .u32(13)
      .i32(2)
      .u32(750)
      .u32(MultiXactStatus.ForKeyShare)
      .u32(751)
      .u32(MultiXactStatus.ForUpdate)
      .build()
    expect(parseMultiXactRecord(0x20, create)).toEqual({
      kind: 'create_id',
      mid: 7,
      moff: 13,
      members: [
        { xid: 750, status: 0 },
        { xid: 751, status: 3 },
      ],
    })
    expectEveryPrefixRejected(create, (d) => parseMultiXactRecord(0x20, d))
    const trunc = new Bytes().u32(5).u32(1).u32(100).u32(1).u32(300).build()
    expect(parseMultiXactRecord(0x30, trunc)).toEqual({
      kind: 'truncate_id',
      oldestMultiDb: 5,
      startTruncOff: 1,
      endTruncOff: 100,
      startTruncMemb: 1,
      endTruncMemb: 300,
    })
    expectEveryPrefixRejected(trunc, (d) => parseMultiXactRecord(0x30, d))
  })

  it('rejects overrunning member counts and unknown member statuses', () => {
    expectFormatError(
      () =>
        parseMultiXactRecord(
          0x20,
          new Bytes()
            .u32(1)
            .u32(1)
            .i32(1 << 30)
            .build(),
        ),
      /members/,
    )
    const bad = new Bytes().u32(1).u32(1).i32(1).u32(5).u32(6).build()
    expectFormatError(() => parseMultiXactRecord(0x20, bad), /member 0 has unknown status 6/)
    expectFormatError(() => parseMultiXactRecord(0x40, bad), /MULTIXACT/)
  })
})

describe('Storage (smgr)', () => {
  it('parses CREATE and TRUNCATE', () => {
    const create = new Bytes().u32(1663).u32(5).u32(16384).i32(3).build()
    expect(parseSmgrRecord(0x11, create)).toEqual({
      kind: 'create',
      rnode: { spcNode: 1663, dbNode: 5, relNode: 16384 },
      forkNum: 3,
    })
    expectEveryPrefixRejected(create, (d) => parseSmgrRecord(0x10, d))
    const trunc = new Bytes().u32(148).u32(1663).u32(5).u32(16384).i32(SMGR_TRUNCATE_ALL).build()
    expect(parseSmgrRecord(0x21, trunc)).toEqual({
      kind: 'truncate',
      blkno: 148,
      rnode: { spcNode: 1663, dbNode: 5, relNode: 16384 },
      flags: 7,
    })
    expectEveryPrefixRejected(trunc, (d) => parseSmgrRecord(0x20, d))
  })

  it('rejects an invalid fork number and unknown ops', () => {
    const create = new Bytes().u32(1663).u32(5).u32(16384).i32(4).build()
    expectFormatError(() => parseSmgrRecord(0x10, create), /forkNum 4 is not a fork/)
    expectFormatError(() => parseSmgrRecord(0x30, create), /SMGR/)
  })
})

describe('Database and Tablespace', () => {
  it('parses CREATE_FILE_COPY, CREATE_WAL_LOG and DROP', () => {
    const copy = new Bytes().u32(16384).u32(1663).u32(1).u32(1663).build()
    expect(parseDbaseRecord(0x01, copy)).toEqual({
      kind: 'create_file_copy',
      dbId: 16384,
      tablespaceId: 1663,
      srcDbId: 1,
      srcTablespaceId: 1663,
    })
    expectEveryPrefixRejected(copy, (d) => parseDbaseRecord(0x00, d))
    const walLog = new Bytes().u32(16385).u32(1663).build()
    expect(parseDbaseRecord(0x10, walLog)).toEqual({
      kind: 'create_wal_log',
      dbId: 16385,
      tablespaceId: 1663,
    })
    expectEveryPrefixRejected(walLog, (d) => parseDbaseRecord(0x10, d))
    const drop = new Bytes().u32(16384).i32(2).u32(1663).u32(16390).build()
    expect(parseDbaseRecord(0x21, drop)).toEqual({ kind: 'drop', dbId: 16384, tablespaceIds: [1663, 16390] })
    expectEveryPrefixRejected(drop, (d) => parseDbaseRecord(0x20, d))
    expectFormatError(() => parseDbaseRecord(0x20, new Bytes().u32(1).i32(-3).build()), /negative/)
    expectFormatError(() => parseDbaseRecord(0x30, drop), /DBASE/)
  })

  it('parses Tablespace CREATE and DROP', () => {
    const create = new Bytes().u32(16390).cstr('/srv/ts1').build()
    expect(parseTblspcRecord(0x00, create)).toEqual({ kind: 'create', tsId: 16390, path: '/srv/ts1' })
    expectEveryPrefixRejected(create, (d) => parseTblspcRecord(0x00, d))
    expect(parseTblspcRecord(0x10, new Bytes().u32(16390).build())).toEqual({ kind: 'drop', tsId: 16390 })
    expectFormatError(() => parseTblspcRecord(0x10, Buffer.alloc(2)), /TBLSPC DROP/)
    expectFormatError(() => parseTblspcRecord(0x20, create), /TBLSPC/)
  })
})

function relMapImage(entries: [number, number][], corrupt?: 'crc' | 'magic' | 'count'): Buffer {
  const map = Buffer.alloc(512)
  map.writeInt32LE(corrupt === 'magic' ? 0x592718 : RELMAPPER_FILEMAGIC, 0)
  map.writeInt32LE(corrupt === 'count' ? 63 : entries.length, 4)
  entries.forEach(([oid, node], i) => {
    map.writeUInt32LE(oid, 8 + i * 8)
    map.writeUInt32LE(node, 12 + i * 8)
  })
  map.writeUInt32LE(crc32c(map.subarray(0, 504)), 504)
  if (corrupt === 'crc') map[504] ^= 1
  // The pad after the CRC is outside the checksum, so garbage there must not matter.
  map.writeUInt32LE(0xdeadbeef, 508)
  return map
}

describe('RelMap', () => {
  it('parses UPDATE and decodes the map image', () => {
    const image = relMapImage([
      [1259, 16402],
      [1249, 1249],
    ])
    const data = new Bytes().u32(5).u32(1663).i32(512).raw(image).build()
    const rec = parseRelMapRecord(0x00, data)
    expect(rec).toMatchObject({ kind: 'update', dbId: 5, tsId: 1663, nbytes: 512 })
    expect(rec.data.equals(image)).toBe(true)
    expect(decodeRelMapFile(rec.data)).toEqual([
      { mapOid: 1259, mapFilenode: 16402 },
      { mapOid: 1249, mapFilenode: 1249 },
    ])
    expectEveryPrefixRejected(data, (d) => parseRelMapRecord(0x00, d))
  })

  it('rejects a size other than 512, a bad magic, a bad CRC and an impossible count', () => {
    const short = new Bytes().u32(0).u32(1664).i32(508).raw(Buffer.alloc(508)).build()
    expectFormatError(() => parseRelMapRecord(0x00, short), /nbytes 508 is not the map file size 512/)
    expectFormatError(() => parseRelMapRecord(0x10, short), /RELMAP/)
    expectFormatError(() => decodeRelMapFile(relMapImage([], 'magic')), /magic 0x592718/)
    expectFormatError(() => decodeRelMapFile(relMapImage([[1, 2]], 'crc')), /CRC-32C/)
    expectFormatError(() => decodeRelMapFile(relMapImage([], 'count')), /num_mappings 63/)
    expectFormatError(() => decodeRelMapFile(Buffer.alloc(100)), /is 100 bytes/)
  })
})

const CHECKPOINT: CheckPoint = {
  redo: 0x1_0154_1a08,
  thisTimeLineId: 2,
  prevTimeLineId: 1,
  fullPageWrites: true,
  nextXid: 3 * 0x1_0000_0000 + 735,
  nextOid: 16390,
  nextMulti: 4,
  nextMultiOffset: 9,
  oldestXid: 716,
  oldestXidDb: 1,
  oldestMulti: 1,
  oldestMultiDb: 5,
  time: 1_716_000_000,
  oldestCommitTsXid: 0,
  newestCommitTsXid: 0,
  oldestActiveXid: 735,
}

describe('XLOG', () => {
  it('parses both checkpoint kinds into a CheckPoint', () => {
    const data = encodeCheckPoint(CHECKPOINT)
    expect(parseXlogRecord(0x00, data)).toEqual({ kind: 'checkpoint_shutdown', checkPoint: CHECKPOINT })
    expect(parseXlogRecord(0x10, data)).toEqual({ kind: 'checkpoint_online', checkPoint: CHECKPOINT })
    expectFormatError(
      () => parseXlogRecord(0x00, data.subarray(0, 87)),
      /XLOG CHECKPOINT_SHUTDOWN: CheckPoint/,
    )
    const bad = Buffer.from(data)
    bad.writeUInt32LE(0xffffffff, 4)
    expectFormatError(() => parseXlogRecord(0x10, bad), /CHECKPOINT_ONLINE: LSN/)
  })

  it('parses NEXTOID, PARAMETER_CHANGE, END_OF_RECOVERY, BACKUP_END', () => {
    expect(parseXlogRecord(0x30, new Bytes().u32(24576).build())).toEqual({ kind: 'nextoid', nextOid: 24576 })
    const params = new Bytes().i32(100).i32(8).i32(10).i32(5).i32(64).i32(2).u8(1).u8(0).zeros(2).build()
    expect(parseXlogRecord(0x60, params)).toEqual({
      kind: 'parameter_change',
      maxConnections: 100,
      maxWorkerProcesses: 8,
      maxWalSenders: 10,
      maxPreparedXacts: 5,
      maxLocksPerXact: 64,
      walLevel: 2,
      walLogHints: true,
      trackCommitTimestamp: false,
    })
    expectEveryPrefixRejected(params.subarray(0, 26), (d) => parseXlogRecord(0x60, d))
    const eor = new Bytes().i64(XACT_TIME).u32(3).u32(2).build()
    expect(parseXlogRecord(0x90, eor)).toEqual({
      kind: 'end_of_recovery',
      endTime: XACT_TIME,
      thisTimeLineId: 3,
      prevTimeLineId: 2,
    })
    expectEveryPrefixRejected(eor, (d) => parseXlogRecord(0x90, d))
    expect(parseXlogRecord(0x50, new Bytes().u64(0x3000028n).build())).toEqual({
      kind: 'backup_end',
      startLsn: 0x3000028,
    })
    expectFormatError(() => parseXlogRecord(0x50, Buffer.alloc(7)), /XLOG BACKUP_END: startpoint/)
  })

  it('parses RESTORE_POINT, FPW_CHANGE, OVERWRITE_CONTRECORD and the data-less ops', () => {
    const name = Buffer.alloc(64)
    name.write('before-upgrade')
    const rp = new Bytes().i64(XACT_TIME).raw(name).build()
    expect(parseXlogRecord(0x70, rp)).toEqual({
      kind: 'restore_point',
      time: XACT_TIME,
      name: 'before-upgrade',
    })
    expectEveryPrefixRejected(rp, (d) => parseXlogRecord(0x70, d))
    const unterminated = new Bytes().i64(0).raw(Buffer.alloc(64, 0x41)).build()
    expectFormatError(() => parseXlogRecord(0x70, unterminated), /rp_name has no terminating NUL/)
    expect(parseXlogRecord(0x80, Buffer.from([0]))).toEqual({ kind: 'fpw_change', fullPageWrites: false })
    expectFormatError(() => parseXlogRecord(0x80, Buffer.alloc(0)), /FPW_CHANGE/)
    const oc = new Bytes().u64(0x5000000n).i64(XACT_TIME).build()
    expect(parseXlogRecord(0xd0, oc)).toEqual({
      kind: 'overwrite_contrecord',
      overwrittenLsn: 0x5000000,
      overwriteTime: XACT_TIME,
    })
    expectEveryPrefixRejected(oc, (d) => parseXlogRecord(0xd0, d))
    expect(parseXlogRecord(0x20, Buffer.alloc(0))).toEqual({ kind: 'noop' })
    expect(parseXlogRecord(0x40, Buffer.alloc(0))).toEqual({ kind: 'switch' })
    expect(parseXlogRecord(0xa0, Buffer.alloc(0))).toEqual({ kind: 'fpi_for_hint' })
    expect(parseXlogRecord(0xb0, Buffer.alloc(0))).toEqual({ kind: 'fpi' })
    expectFormatError(() => parseXlogRecord(0xc0, Buffer.alloc(0)), /XLOG: xl_info 0xc0/)
  })
})

describe('Heap VM clears', () => {
  const insert = (flags: number) => new Bytes().u16(3).u8(flags).build()
  const eightByte = (flags: number) => new Bytes().u32(740).u16(2).u8(0).u8(flags).build()
  const update = (flags: number) => new Bytes().u32(740).u16(2).u8(0).u8(flags).u32(0).u16(5).build()
  const multi = (flags: number) => new Bytes().u8(flags).u8(0).u16(2).u16(1).u16(2).build()

  it('maps each record flag to the VM bits of the right block', () => {
    expect(heapVmClears(RM_HEAP_ID, 0x00, insert(0x01))).toEqual({
      block0: VISIBILITYMAP_VALID_BITS,
      oldPage: 0,
    })
    expect(heapVmClears(RM_HEAP_ID, 0x80, insert(0x01))).toEqual({ block0: 3, oldPage: 0 })
    expect(heapVmClears(RM_HEAP_ID, 0x00, insert(0x02))).toBeNull()
    expect(heapVmClears(RM_HEAP_ID, 0x10, eightByte(0x01))).toEqual({ block0: 3, oldPage: 0 })
    expect(heapVmClears(RM_HEAP_ID, 0x10, eightByte(0x02))).toBeNull()
    expect(heapVmClears(RM_HEAP_ID, 0x20, update(0x01))).toEqual({ block0: 0, oldPage: 3 })
    expect(heapVmClears(RM_HEAP_ID, 0x20, update(0x02))).toEqual({ block0: 3, oldPage: 0 })
    expect(heapVmClears(RM_HEAP_ID, 0xc0, update(0x03))).toEqual({ block0: 3, oldPage: 3 })
    expect(heapVmClears(RM_HEAP_ID, 0x40, update(0x00))).toBeNull()
    expect(heapVmClears(RM_HEAP_ID, 0x60, eightByte(0x01))).toEqual({
      block0: VISIBILITYMAP_ALL_FROZEN,
      oldPage: 0,
    })
    expect(heapVmClears(RM_HEAP2_ID, 0x50, multi(0x01))).toEqual({ block0: 3, oldPage: 0 })
    expect(heapVmClears(RM_HEAP2_ID, 0xd0, multi(0x20))).toBeNull()
    expect(heapVmClears(RM_HEAP2_ID, 0x60, eightByte(0x01))).toEqual({ block0: 2, oldPage: 0 })
  })

  it('ignores ops and rmgrs without VM side effects', () => {
    expect(heapVmClears(RM_HEAP_ID, 0x30, Buffer.alloc(0))).toBeNull()
    expect(heapVmClears(RM_HEAP_ID, 0x50, Buffer.alloc(0))).toBeNull()
    expect(heapVmClears(RM_HEAP2_ID, 0x10, Buffer.alloc(0))).toBeNull()
    expect(heapVmClears(RM_HEAP2_ID, 0x40, Buffer.alloc(0))).toBeNull()
    expect(heapVmClears(11, 0x00, Buffer.alloc(0))).toBeNull()
  })

  it('rejects records too short to hold their flags byte', () => {
    expectFormatError(() => heapVmClears(RM_HEAP_ID, 0x00, insert(1).subarray(0, 2)), /HEAP INSERT: flags/)
    expectFormatError(() => heapVmClears(RM_HEAP_ID, 0x10, Buffer.alloc(7)), /HEAP DELETE/)
    expectFormatError(() => heapVmClears(RM_HEAP_ID, 0x20, Buffer.alloc(7)), /HEAP UPDATE/)
    expectFormatError(() => heapVmClears(RM_HEAP_ID, 0x40, Buffer.alloc(3)), /HEAP HOT_UPDATE/)
    expectFormatError(() => heapVmClears(RM_HEAP_ID, 0x60, Buffer.alloc(0)), /HEAP LOCK/)
    expectFormatError(() => heapVmClears(RM_HEAP2_ID, 0x50, Buffer.alloc(0)), /HEAP2 MULTI_INSERT/)
    expectFormatError(() => heapVmClears(RM_HEAP2_ID, 0x60, Buffer.alloc(6)), /HEAP2 LOCK_UPDATED/)
  })

  it('parses Heap2 VISIBLE', () => {
    const data = new Bytes().u32(731).u8(0x03).build()
    expect(parseHeapVisible(0x42, data)).toEqual({ cutoffXid: 731, flags: 3 })
    expectEveryPrefixRejected(data, (d) => parseHeapVisible(0x40, d))
    expectFormatError(() => parseHeapVisible(0x50, data), /VISIBLE/)
  })
})

describe('robustness on garbage', () => {
  const parsers: [string, (info: number, d: Buffer) => unknown][] = [
    ['xact', (info, d) => parseXactRecord(info, d, 1)],
    ['clog', parseClogRecord],
    ['commit_ts', parseCommitTsRecord],
    ['multixact', parseMultiXactRecord],
    ['smgr', parseSmgrRecord],
    ['dbase', parseDbaseRecord],
    ['tblspc', parseTblspcRecord],
    ['relmap', parseRelMapRecord],
    ['xlog', parseXlogRecord],
    ['heap', (info, d) => heapVmClears(RM_HEAP_ID, info, d)],
    ['heap2', (info, d) => heapVmClears(RM_HEAP2_ID, info, d)],
    ['heap2 visible', parseHeapVisible],
    ['replorigin', parseReplOriginRecord],
  ]

  it('only ever throws WalRecordFormatError, for every info byte and random data', () => {
    const rand = rng(0x5eed)
    for (const [name, parse] of parsers) {
      for (let info = 0; info < 256; info++) {
        for (let trial = 0; trial < 12; trial++) {
          const len = Math.floor(rand() * (trial < 6 ? 40 : 700))
          const data = Buffer.alloc(len)
          for (let i = 0; i < len; i++) data[i] = rand() < 0.3 ? 0 : Math.floor(rand() * 256)
          try {
            parse(info, data)
          } catch (err) {
            if (!(err instanceof WalRecordFormatError)) {
              throw new Error(`${name} info 0x${info.toString(16)} data ${data.toString('hex')}: ${err}`)
            }
          }
        }
      }
    }
  })
})
