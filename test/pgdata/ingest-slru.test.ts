/**
 * WAL ingest of the SLRUs, commit timestamps, replication origins and PARAMETER_CHANGE, on records
 * written by hand: the cases real Postgres does not reach in a test's time (pg_xact and members
 * truncation need a million xids or 52,000 multixact members; wraparound), checked against what PG15's
 * redo does. The common paths run on real Postgres in commit-ts.pg.test.ts and control-file.pg.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import {
  CHECKPOINT_KEY,
  CONTROLFILE_KEY,
  encodeSize,
  encodeU32Set,
  REPLORIGIN_DIR_KEY,
  SLRU_KINDS,
  SlruKind,
  slruBlockKey,
  slruDirKey,
  slruSegSizeKey,
} from '../../src/pgdata/datadir-mapping.js'
import { DatadirReader } from '../../src/pgdata/datadir-reader.js'
import { WalIngest } from '../../src/pgdata/walingest.js'
import { type CheckPoint, decodeCheckPoint, encodeCheckPoint } from '../../src/postgres/checkpoint.js'
import {
  type ControlFile,
  DBState,
  decodeControlFile,
  encodeControlFile,
  WalLevel,
} from '../../src/postgres/pg-control.js'
import { XACT_XINFO_HAS_ORIGIN, XACT_XINFO_HAS_SUBXACTS } from '../../src/postgres/records/xact.js'
import {
  RM_CLOG_ID,
  RM_COMMIT_TS_ID,
  RM_MULTIXACT_ID,
  RM_REPLORIGIN_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  XLOG_PARAMETER_CHANGE,
  XLOG_XACT_ABORT,
  XLOG_XACT_COMMIT,
  XLOG_XACT_HAS_INFO,
} from '../../src/postgres/rmgr.js'
import {
  CLOG_XACTS_PER_PAGE,
  COMMIT_TS_XACTS_PER_PAGE,
  clogStatus,
  MULTIXACT_MEMBERS_PER_PAGE,
  readCommitTsEntry,
  TRANSACTION_STATUS_ABORTED,
  TRANSACTION_STATUS_COMMITTED,
} from '../../src/postgres/slru.js'
import type { DecodedRecord } from '../../src/postgres/xlog-record.js'

const work = mkdtempSync(path.join(os.tmpdir(), 'zenith-ingest-slru-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const CHECKPOINT: CheckPoint = {
  redo: 0x100_0000,
  thisTimeLineId: 1,
  prevTimeLineId: 1,
  fullPageWrites: true,
  nextXid: 1000,
  nextOid: 16384,
  nextMulti: 1,
  nextMultiOffset: 0,
  oldestXid: 716,
  oldestXidDb: 1,
  oldestMulti: 1,
  oldestMultiDb: 1,
  time: 1_700_000_000,
  oldestCommitTsXid: 0,
  newestCommitTsXid: 0,
  oldestActiveXid: 0,
}

function controlFile(trackCommitTimestamp: boolean): ControlFile {
  return {
    systemIdentifier: 7_000_000_000_000_000_001n,
    pgControlVersion: 1300,
    catalogVersionNo: 202209061,
    state: DBState.DB_SHUTDOWNED,
    time: 1_700_000_000,
    checkPoint: CHECKPOINT.redo,
    checkPointCopy: CHECKPOINT,
    unloggedLsn: 1000,
    minRecoveryPoint: 0,
    minRecoveryPointTli: 0,
    backupStartPoint: 0,
    backupEndPoint: 0,
    backupEndRequired: false,
    walLevel: WalLevel.WAL_LEVEL_REPLICA,
    walLogHints: false,
    maxConnections: 100,
    maxWorkerProcesses: 8,
    maxWalSenders: 10,
    maxPreparedXacts: 0,
    maxLocksPerXact: 64,
    trackCommitTimestamp,
    maxAlign: 8,
    floatFormat: 1234567.0,
    blcksz: 8192,
    relsegSize: 131072,
    xlogBlcksz: 8192,
    xlogSegSize: 16 * 1024 * 1024,
    nameDataLen: 64,
    indexMaxKeys: 32,
    toastMaxChunkSize: 1996,
    loblksize: 2048,
    float8ByVal: true,
    dataChecksumVersion: 0,
    mockAuthenticationNonce: Buffer.alloc(32, 7),
  }
}

let repoSeq = 0
/** A timeline as import leaves one: pg_control, the checkpoint, and empty SLRU directories. */
async function timeline(opts: { track?: boolean; checkpoint?: Partial<CheckPoint> } = {}): Promise<Timeline> {
  const repo = await Repository.open(path.join(work, `repo-${++repoSeq}`), { background: false })
  const tl = repo.createTenant().createTimeline(0x100_0000)
  const at = 0x100_0008
  const put = (key: Buffer, page: Buffer) => ({ key, lsn: at, value: { kind: 'image' as const, page } })
  tl.ingest(
    [
      put(CONTROLFILE_KEY, encodeControlFile(controlFile(opts.track ?? true))),
      put(CHECKPOINT_KEY, encodeCheckPoint({ ...CHECKPOINT, ...opts.checkpoint })),
      ...SLRU_KINDS.map((k) => put(slruDirKey(k), encodeU32Set([]))),
    ],
    at,
  )
  return tl
}

/** Feeds records to a fresh WalIngest and commits. */
function ingest(tl: Timeline, recs: DecodedRecord[]): DatadirReader {
  const w = new WalIngest(tl)
  for (const r of recs) w.ingest(r)
  w.commit()
  return new DatadirReader(tl, tl.lastRecordLsn)
}

let nextLsn = 0x200_0000
function record(
  rmid: number,
  info: number,
  mainData: Buffer,
  extra: Partial<DecodedRecord> = {},
): DecodedRecord {
  const lsn = nextLsn
  nextLsn += 0x100
  return {
    lsn,
    endLsn: lsn + 0x80,
    totLen: 24 + mainData.length,
    xid: 0,
    prev: 0,
    info,
    rmid,
    crc: 0,
    blocks: [],
    mainData,
    origin: 0,
    toplevelXid: 0,
    fpiLen: 0,
    raw: Buffer.alloc(0),
    ...extra,
  }
}

const le = (...fields: [number, 'u16' | 'u32' | 'i32' | 'i64' | 'u64' | 'u8'][]) =>
  Buffer.concat(
    fields.map(([v, t]) => {
      const b = Buffer.alloc({ u8: 1, u16: 2, u32: 4, i32: 4, i64: 8, u64: 8 }[t])
      if (t === 'u8') b.writeUInt8(v)
      else if (t === 'u16') b.writeUInt16LE(v)
      else if (t === 'u32') b.writeUInt32LE(v)
      else if (t === 'i32') b.writeInt32LE(v)
      else if (t === 'i64') b.writeBigInt64LE(BigInt(v))
      else b.writeBigUInt64LE(BigInt(v))
      return b
    }),
  )

const zeroPage = (rmid: number, pageno: number, info = 0x00) => record(rmid, info, le([pageno, 'i32']))
const T0 = 786_000_000_000_000

/** A commit (or abort) record of `xid` with subtransactions and, optionally, a replication origin. */
function completion(
  xid: number,
  opts: {
    subxacts?: number[]
    time?: number
    origin?: { id: number; lsn: number; time: number }
    abort?: boolean
  } = {},
): DecodedRecord {
  const subs = opts.subxacts ?? []
  const xinfo = (subs.length ? XACT_XINFO_HAS_SUBXACTS : 0) | (opts.origin ? XACT_XINFO_HAS_ORIGIN : 0)
  const parts: Buffer[] = [le([opts.time ?? T0, 'i64'], [xinfo, 'u32'])]
  if (subs.length) parts.push(le([subs.length, 'i32'], ...subs.map((x): [number, 'u32'] => [x, 'u32'])))
  if (opts.origin) parts.push(le([opts.origin.lsn, 'u64'], [opts.origin.time, 'i64']))
  const op = opts.abort ? XLOG_XACT_ABORT : XLOG_XACT_COMMIT
  return record(RM_XACT_ID, op | XLOG_XACT_HAS_INFO, Buffer.concat(parts), {
    xid,
    origin: opts.origin?.id ?? 0,
  })
}

function parameterChange(trackCommitTimestamp: boolean, maxConnections = 100): DecodedRecord {
  const data = le(
    [maxConnections, 'i32'],
    [8, 'i32'],
    [10, 'i32'],
    [0, 'i32'],
    [64, 'i32'],
    [WalLevel.WAL_LEVEL_REPLICA, 'i32'],
    [0, 'u8'],
    [trackCommitTimestamp ? 1 : 0, 'u8'],
    [0, 'u16'],
  )
  return record(RM_XLOG_ID, XLOG_PARAMETER_CHANGE, data)
}

const checkpointOf = (dd: DatadirReader) => decodeCheckPoint(dd.checkpoint()!)
const slruPageOf = (dd: DatadirReader, kind: SlruKind, pageno: number) =>
  dd.slruPage(kind, Math.floor(pageno / 32), pageno % 32)

describe('commit timestamps', () => {
  it('sets time and origin of a transaction tree, and newestCommitTsXid from its last subtransaction', async () => {
    const tl = await timeline()
    const dd = ingest(tl, [
      zeroPage(RM_COMMIT_TS_ID, 1),
      completion(1000, { subxacts: [1003, 1001], time: T0 + 5 }),
      completion(1010, { origin: { id: 3, lsn: 0x5_0000, time: T0 - 99 }, time: T0 + 6 }),
      completion(1011, { abort: true }),
    ])
    const page = slruPageOf(dd, SlruKind.CommitTs, 1)
    for (const x of [1000, 1001, 1003])
      expect(readCommitTsEntry(page, x), `${x}`).toEqual({ time: T0 + 5, nodeId: 0 })
    expect(readCommitTsEntry(page, 1002)).toEqual({ time: 0, nodeId: 0 })
    // A commit applied by an origin keeps the origin's commit time; an abort sets nothing.
    expect(readCommitTsEntry(page, 1010)).toEqual({ time: T0 - 99, nodeId: 3 })
    expect(readCommitTsEntry(page, 1011)).toEqual({ time: 0, nodeId: 0 })
    expect(clogStatus(slruPageOf(dd, SlruKind.Clog, 0), 1011)).toBe(TRANSACTION_STATUS_ABORTED)
    // As TransactionTreeSetCommitTsData: the last listed subtransaction, then the later commit.
    expect(checkpointOf(dd).newestCommitTsXid).toBe(1010)
  })

  it('records none while pg_control says track_commit_timestamp is off', async () => {
    const tl = await timeline({ track: false })
    const dd = ingest(tl, [completion(1000)])
    expect(dd.slruSegments(SlruKind.CommitTs)).toEqual([])
    expect(clogStatus(slruPageOf(dd, SlruKind.Clog, 0), 1000)).toBe(TRANSACTION_STATUS_COMMITTED)
  })

  it('reads a page that does not exist yet as zeros, and creates its segment (as redo of a missing file)', async () => {
    const tl = await timeline()
    const xid = COMMIT_TS_XACTS_PER_PAGE * 33 + 7 // segment 1, page 1
    const dd = ingest(tl, [completion(xid)])
    expect(dd.slruSegments(SlruKind.CommitTs)).toEqual([1])
    expect(dd.slruSegmentSize(SlruKind.CommitTs, 1)).toBe(2)
    expect(slruPageOf(dd, SlruKind.CommitTs, 32).equals(Buffer.alloc(8192))).toBe(true)
    expect(readCommitTsEntry(slruPageOf(dd, SlruKind.CommitTs, 33), xid).time).toBe(T0)
  })

  it('starts at nextXid when PARAMETER_CHANGE turns it on, and removes everything when it turns it off', async () => {
    const tl = await timeline({ track: false, checkpoint: { nextXid: COMMIT_TS_XACTS_PER_PAGE * 40 + 3 } })
    const on = ingest(tl, [parameterChange(true, 150)])
    const cf = decodeControlFile(on.controlFile()!)
    expect([cf.trackCommitTimestamp, cf.maxConnections]).toEqual([true, 150])
    const cp = checkpointOf(on)
    expect([cp.oldestCommitTsXid, cp.newestCommitTsXid]).toEqual([
      COMMIT_TS_XACTS_PER_PAGE * 40 + 3,
      COMMIT_TS_XACTS_PER_PAGE * 40 + 3,
    ])
    // The page of nextXid exists, as ActivateCommitTs leaves it.
    expect(on.slruSegments(SlruKind.CommitTs)).toEqual([1])
    expect(on.slruSegmentSize(SlruKind.CommitTs, 1)).toBe(40 - 32 + 1)
    const again = ingest(tl, [completion(COMMIT_TS_XACTS_PER_PAGE * 40 + 3), parameterChange(true, 200)])
    expect(checkpointOf(again).oldestCommitTsXid).toBe(COMMIT_TS_XACTS_PER_PAGE * 40 + 3)
    const off = ingest(tl, [parameterChange(false)])
    expect(off.slruSegments(SlruKind.CommitTs)).toEqual([])
    expect([checkpointOf(off).oldestCommitTsXid, checkpointOf(off).newestCommitTsXid]).toEqual([0, 0])
    expect(decodeControlFile(off.controlFile()!).trackCommitTimestamp).toBe(false)
  })

  it('truncates segments before the cutoff and moves oldestCommitTsXid forward only', async () => {
    const tl = await timeline({ checkpoint: { oldestCommitTsXid: 1000, newestCommitTsXid: 1000 } })
    const trunc = (pageno: number, oldestXid: number) =>
      record(RM_COMMIT_TS_ID, 0x10, le([pageno, 'i32'], [oldestXid, 'u32']))
    const dd = ingest(tl, [
      zeroPage(RM_COMMIT_TS_ID, 1),
      zeroPage(RM_COMMIT_TS_ID, 40),
      zeroPage(RM_COMMIT_TS_ID, 70),
      trunc(64, 52_500),
    ])
    expect(dd.slruSegments(SlruKind.CommitTs)).toEqual([2])
    expect(checkpointOf(dd).oldestCommitTsXid).toBe(52_500)
    expect(checkpointOf(ingest(tl, [trunc(64, 30_000)])).oldestCommitTsXid).toBe(52_500)
  })
})

describe('pg_xact and pg_multixact truncation', () => {
  it('removes pg_xact segments wholly before the cutoff, and moves oldestXid with it', async () => {
    const tl = await timeline()
    const pagesPerSeg = 32
    const dd = ingest(tl, [
      zeroPage(RM_CLOG_ID, pagesPerSeg * 1),
      zeroPage(RM_CLOG_ID, pagesPerSeg * 2),
      zeroPage(RM_CLOG_ID, pagesPerSeg * 3 + 4),
      // cutoff in segment 2: segments 0 and 1 go
      record(
        RM_CLOG_ID,
        0x10,
        le([pagesPerSeg * 2 + 5, 'i32'], [CLOG_XACTS_PER_PAGE * (pagesPerSeg * 2 + 5), 'u32'], [5, 'u32']),
      ),
    ])
    expect(dd.slruSegments(SlruKind.Clog)).toEqual([2, 3])
    const cp = checkpointOf(dd)
    expect([cp.oldestXid, cp.oldestXidDb]).toEqual([CLOG_XACTS_PER_PAGE * (pagesPerSeg * 2 + 5), 5])
  })

  it('brings a removed segment back as zeros, not as what it held before', async () => {
    const tl = await timeline({ track: false })
    ingest(tl, [completion(1000)])
    const wrapped = ingest(tl, [
      zeroPage(RM_CLOG_ID, 40),
      record(RM_CLOG_ID, 0x10, le([40, 'i32'], [CLOG_XACTS_PER_PAGE * 40, 'u32'], [5, 'u32'])),
      // After wraparound, xid 1000 + 2^32 lands on segment 0 again, page 0.
      zeroPage(RM_CLOG_ID, 1),
    ])
    expect(wrapped.slruSegments(SlruKind.Clog)).toEqual([0, 1])
    expect(wrapped.slruSegmentSize(SlruKind.Clog, 0)).toBe(2)
    expect(clogStatus(slruPageOf(wrapped, SlruKind.Clog, 0), 1000)).toBe(0)
  })

  it('removes members segments from the old start to the new, wrapping past the last, and offsets before the cutoff', async () => {
    const memberSeg = MULTIXACT_MEMBERS_PER_PAGE * 32
    const maxSeg = Math.floor(Math.floor(0xffffffff / MULTIXACT_MEMBERS_PER_PAGE) / 32)
    const tl = await timeline()
    const base: [Buffer, Buffer][] = [
      [slruDirKey(SlruKind.MultiXactMembers), encodeU32Set([maxSeg - 1, maxSeg, 0, 1])],
      [slruDirKey(SlruKind.MultiXactOffsets), encodeU32Set([0, 1, 2])],
      ...[maxSeg - 1, maxSeg, 0, 1].map((s): [Buffer, Buffer] => [
        slruSegSizeKey(SlruKind.MultiXactMembers, s),
        encodeSize(1),
      ]),
      ...[0, 1, 2].map((s): [Buffer, Buffer] => [
        slruSegSizeKey(SlruKind.MultiXactOffsets, s),
        encodeSize(1),
      ]),
      [slruBlockKey(SlruKind.MultiXactMembers, 1, 0), Buffer.alloc(8192, 1)],
    ]
    tl.ingest(
      base.map(([key, page]) => ({ key, lsn: 0x100_0010, value: { kind: 'image' as const, page } })),
      0x100_0010,
    )
    const dd = ingest(tl, [
      record(
        RM_MULTIXACT_ID,
        0x30,
        le(
          [5, 'u32'],
          [1, 'u32'],
          [2048 * 64 + 1, 'u32'],
          [(maxSeg - 1) * memberSeg, 'u32'],
          [memberSeg + 3, 'u32'],
        ),
      ),
    ])
    expect(dd.slruSegments(SlruKind.MultiXactMembers)).toEqual([1])
    // The offsets cutoff is the page of the multixact before the new oldest: segment 2's first page.
    expect(dd.slruSegments(SlruKind.MultiXactOffsets)).toEqual([2])
    const cp = checkpointOf(dd)
    expect([cp.oldestMulti, cp.oldestMultiDb]).toEqual([2048 * 64 + 1, 5])
  })
})

describe('replication origins', () => {
  const set = (id: number, lsn: number, force: boolean) =>
    record(
      RM_REPLORIGIN_ID,
      0x00,
      le([lsn, 'u64'], [id, 'u16'], [force ? 1 : 0, 'u8'], [0, 'u8'], [0, 'u32']),
    )
  const progress = (dd: DatadirReader) => dd.replicationOrigins()

  it('moves forward with commits and SET, back only when forced, and forgets on DROP', async () => {
    const tl = await timeline({ track: false })
    expect(progress(ingest(tl, [set(2, 0x9000, false)]))).toEqual([{ roident: 2, remoteLsn: 0x9000 }])
    const later = ingest(tl, [
      completion(1000, { origin: { id: 2, lsn: 0x8000, time: T0 } }),
      completion(1001, { origin: { id: 4, lsn: 0x100, time: T0 } }),
    ])
    expect(progress(later)).toEqual([
      { roident: 2, remoteLsn: 0x9000 },
      { roident: 4, remoteLsn: 0x100 },
    ])
    const forced = ingest(tl, [set(2, 0x10, true), record(RM_REPLORIGIN_ID, 0x10, le([4, 'u16']))])
    expect(progress(forced)).toEqual([{ roident: 2, remoteLsn: 0x10 }])
    expect(forced.get(REPLORIGIN_DIR_KEY)).toEqual(encodeU32Set([2]))
  })
})
