/**
 * Runs a workload on a real PostgreSQL 15, then decodes the main data of every record of the rmgrs we parse
 * and compares the result with what pg_waldump's desc prints for the same record.
 *
 * The WAL decoder is written elsewhere, so this file carries its own minimal record reader: it stitches a
 * record's bytes across WAL pages, checks its CRC and walks the block headers to the main data.
 */
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import type { CheckPoint } from '../../src/postgres/checkpoint.js'
import { crc32c } from '../../src/postgres/crc32c.js'
import { formatLsn, type Lsn, parseLsn, walFileName } from '../../src/postgres/lsn.js'
import { parseClogRecord } from '../../src/postgres/records/clog.js'
import { parseDbaseRecord } from '../../src/postgres/records/dbase.js'
import { heapVmClears, parseHeapVisible } from '../../src/postgres/records/heap.js'
import { parseMultiXactRecord } from '../../src/postgres/records/multixact.js'
import { decodeRelMapFile, parseRelMapRecord } from '../../src/postgres/records/relmap.js'
import { parseSmgrRecord } from '../../src/postgres/records/smgr.js'
import { parseTblspcRecord } from '../../src/postgres/records/tblspc.js'
import { parseXactRecord, type XactCompletion, type XactPrepare } from '../../src/postgres/records/xact.js'
import { parseXlogRecord } from '../../src/postgres/records/xlog.js'
import type { RelFileNode } from '../../src/postgres/relfile.js'
import { RM_HEAP_ID, RM_HEAP2_ID } from '../../src/postgres/rmgr.js'
import { type PgCluster, pgBin, withPostgres } from '../harness/postgres.js'

const SEG_SIZE = 16 * 1024 * 1024
const PAGE = 8192
const TIMELINE = 1
const PG_EPOCH_MS = Date.UTC(2000, 0, 1)

interface RawRecord {
  xid: number
  info: number
  rmid: number
  totLen: number
  mainData: Buffer
  end: Lsn
}

/** Test-only reader of records straight from the segment files of a stopped cluster. */
class SegmentReader {
  private readonly segments = new Map<number, Buffer>()

  constructor(private readonly walDir: string) {}

  private segment(segNo: number): Buffer {
    let seg = this.segments.get(segNo)
    if (!seg) {
      seg = readFileSync(path.join(this.walDir, walFileName(TIMELINE, segNo, SEG_SIZE)))
      this.segments.set(segNo, seg)
    }
    return seg
  }

  /** `len` record bytes from `lsn` on, skipping the page headers (long at a segment start) in between. */
  private bytes(lsn: Lsn, len: number): { data: Buffer; end: Lsn } {
    const data = Buffer.alloc(len)
    let pos = lsn
    let copied = 0
    while (copied < len) {
      if (pos % PAGE === 0) pos += pos % SEG_SIZE === 0 ? 40 : 24
      const offset = pos % SEG_SIZE
      const n = Math.min(len - copied, PAGE - (offset % PAGE))
      this.segment(Math.floor(pos / SEG_SIZE)).copy(data, copied, offset, offset + n)
      copied += n
      pos += n
    }
    return { data, end: pos }
  }

  record(lsn: Lsn): RawRecord {
    const totLen = this.bytes(lsn, 4).data.readUInt32LE(0)
    const { data: raw, end } = this.bytes(lsn, totLen)
    const crc = crc32c(raw.subarray(0, 20), crc32c(raw.subarray(24)))
    expect(crc, `CRC of the record at ${formatLsn(lsn)}`).toBe(raw.readUInt32LE(20))
    let pos = 24
    let payload = 0
    let mainLen = 0
    while (raw.length - pos > payload) {
      const id = raw[pos]
      if (id === 255) {
        mainLen = raw[pos + 1]
        break
      }
      if (id === 254) {
        mainLen = raw.readUInt32LE(pos + 1)
        break
      }
      if (id === 253) pos += 3
      else if (id === 252) pos += 5
      else {
        const forkFlags = raw[pos + 1]
        payload += raw.readUInt16LE(pos + 2)
        pos += 4
        if (forkFlags & 0x10) {
          payload += raw.readUInt16LE(pos)
          const bimgInfo = raw[pos + 4]
          pos += 5
          if (bimgInfo & 0x01 && bimgInfo & 0x1c) pos += 2
        }
        if (!(forkFlags & 0x80)) pos += 12
        pos += 4
      }
    }
    return {
      xid: raw.readUInt32LE(4),
      info: raw[16],
      rmid: raw[17],
      totLen,
      mainData: raw.subarray(totLen - mainLen),
      end,
    }
  }
}

interface DumpLine {
  rmgr: string
  totLen: number
  tx: number
  lsn: Lsn
  /** The record's own description, without the block references pg_waldump appends. */
  desc: string
}

const LINE =
  /^rmgr: (\S+)\s+len \(rec\/tot\):\s*\d+\/\s*(\d+), tx:\s*(\d+), lsn: (\S+), prev \S+, desc: (.*)$/

async function walDump(pg: PgCluster, start: Lsn, end: Lsn): Promise<DumpLine[]> {
  const { stdout } = await execa(
    pgBin('pg_waldump'),
    ['-p', pg.walDir, '-s', formatLsn(start), '-e', formatLsn(end)],
    {
      env: { TZ: 'UTC', LC_ALL: 'C' },
    },
  )
  return stdout.split('\n').map((line) => {
    const m = LINE.exec(line)
    if (!m) throw new Error(`unexpected pg_waldump line: ${line}`)
    return {
      rmgr: m[1],
      totLen: Number(m[2]),
      tx: Number(m[3]),
      lsn: parseLsn(m[4]),
      desc: m[5].split(', blkref #')[0].trimEnd(),
    }
  })
}

/** pg_waldump's timestamptz_to_str in the UTC zone. */
function pgTimestamp(usecs: number): string {
  const iso = new Date(PG_EPOCH_MS + Math.floor(usecs / 1000)).toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(usecs % 1_000_000).padStart(6, '0')} UTC`
}

const FORK_SUFFIX = ['', '_fsm', '_vm', '_init']

function relPath(r: RelFileNode, fork = 0): string {
  const suffix = FORK_SUFFIX[fork]
  if (r.spcNode === 1664) return `global/${r.relNode}${suffix}`
  if (r.spcNode === 1663) return `base/${r.dbNode}/${r.relNode}${suffix}`
  return `pg_tblspc/${r.spcNode}/PG_15_202209061/${r.dbNode}/${r.relNode}${suffix}`
}

function checkpointDesc(cp: CheckPoint, kind: 'online' | 'shutdown'): string {
  const epoch = Math.floor(cp.nextXid / 0x1_0000_0000)
  return [
    `redo ${formatLsn(cp.redo)}`,
    `tli ${cp.thisTimeLineId}`,
    `prev tli ${cp.prevTimeLineId}`,
    `fpw ${cp.fullPageWrites}`,
    `xid ${epoch}:${cp.nextXid - epoch * 0x1_0000_0000}`,
    `oid ${cp.nextOid}`,
    `multi ${cp.nextMulti}`,
    `offset ${cp.nextMultiOffset}`,
    `oldest xid ${cp.oldestXid} in DB ${cp.oldestXidDb}`,
    `oldest multi ${cp.oldestMulti} in DB ${cp.oldestMultiDb}`,
    `oldest/newest commit timestamp xid: ${cp.oldestCommitTsXid}/${cp.newestCommitTsXid}`,
    `oldest running xid ${cp.oldestActiveXid}`,
    kind,
  ].join('; ')
}

const MULTIXACT_STATUS = ['keysh', 'sh', 'fornokeyupd', 'forupd', 'nokeyupd', 'upd']
const WAL_LEVEL = ['minimal', 'replica', 'logical']
const onOff = (b: boolean) => (b ? 'on' : 'off')
const INVAL_KINDS = /\b(catcache|catalog|relcache|smgr|relmap|snapshot|unrecognized)\b/g

/** Splits a Transaction desc into its "; "-separated sections, keyed by the label before ": ". */
function xactSections(desc: string): { head: string; sections: Map<string, string> } {
  const [head, ...rest] = desc.split('; ')
  const sections = new Map<string, string>()
  for (const part of rest) {
    const colon = part.indexOf(': ')
    if (colon < 0) sections.set(part, '')
    else sections.set(part.slice(0, colon), part.slice(colon + 2))
  }
  return { head, sections }
}

function expectListSection(sections: Map<string, string>, label: string, items: string[]): void {
  if (items.length === 0) expect(sections.has(label), label).toBe(false)
  else expect(sections.get(label), label).toBe(items.join(' '))
}

function expectInvalCount(sections: Map<string, string>, count: number): void {
  expect((sections.get('inval msgs') ?? '').match(INVAL_KINDS)?.length ?? 0).toBe(count)
}

const COMPLETION_NAMES: Record<string, string> = {
  commit: 'COMMIT',
  abort: 'ABORT',
  commit_prepared: 'COMMIT_PREPARED',
  abort_prepared: 'ABORT_PREPARED',
}

/** Every decoded record, grouped by pg_waldump's rmgr name and the record name it prints first. */
type Seen = Map<string, unknown[]>

function checkXact(line: DumpLine, rec: RawRecord, seen: Seen): void {
  const parsed = parseXactRecord(rec.info, rec.mainData, rec.xid)
  const { head, sections } = xactSections(line.desc)
  switch (parsed.kind) {
    case 'assignment':
      expect(line.desc).toBe(`ASSIGNMENT xtop ${parsed.xtop}: subxacts: ${parsed.subxacts.join(' ')}`)
      break
    case 'invalidations':
      expect(head).toBe('INVALIDATION ')
      expectInvalCount(sections, parsed.invalidationCount)
      break
    case 'prepare': {
      expect(parsed.xid).toBe(line.tx)
      expect(head).toBe(`PREPARE gid ${parsed.gid}: ${pgTimestamp(parsed.preparedAt)}`)
      expectListSection(
        sections,
        'rels(commit)',
        parsed.commitRels.map((r) => relPath(r)),
      )
      expectListSection(
        sections,
        'rels(abort)',
        parsed.abortRels.map((r) => relPath(r)),
      )
      const stats = (list: XactPrepare['commitStats']) => list.map((s) => `${s.kind}/${s.dbOid}/${s.objOid}`)
      expectListSection(sections, 'commit dropped stats', stats(parsed.commitStats))
      expectListSection(sections, 'abort dropped stats', stats(parsed.abortStats))
      expectListSection(sections, 'subxacts', parsed.subxacts.map(String))
      expectInvalCount(sections, parsed.invalidationCount)
      break
    }
    default: {
      const prepared = parsed.kind === 'commit_prepared' || parsed.kind === 'abort_prepared'
      const xidPrefix = prepared ? `${parsed.xid}: ` : ''
      if (!prepared) expect(parsed.xid).toBe(line.tx)
      expect(head).toBe(`${COMPLETION_NAMES[parsed.kind]} ${xidPrefix}${pgTimestamp(parsed.xactTime)}`)
      expectListSection(
        sections,
        'rels',
        parsed.relfilenodes.map((r) => relPath(r)),
      )
      expectListSection(sections, 'subxacts', parsed.subxacts.map(String))
      const stats = parsed.droppedStats.map((s) => `${s.kind}/${s.dbOid}/${s.objOid}`)
      expectListSection(sections, 'dropped stats', stats)
      expectInvalCount(sections, parsed.invalidationCount)
      const initFile = [...sections.keys()].find((k) => k.startsWith('relcache init file inval'))
      if (initFile) expect(initFile).toBe(`relcache init file inval dbid ${parsed.dbId} tsid ${parsed.tsId}`)
    }
  }
  push(seen, `Transaction ${head.split(' ')[0]}`, parsed)
}

function push(seen: Seen, key: string, value: unknown): void {
  const list = seen.get(key) ?? []
  list.push(value)
  seen.set(key, list)
}

/** Checks a record of a non-heap rmgr by rebuilding pg_waldump's whole desc from the parsed fields. */
function rebuildDesc(line: DumpLine, rec: RawRecord, seen: Seen): string | null {
  const name = line.desc.split(' ')[0]
  const key = `${line.rmgr} ${name}`
  const note = (value: unknown, desc: string) => {
    push(seen, key, value)
    return `${name} ${desc}`.trimEnd()
  }
  switch (line.rmgr) {
    case 'XLOG': {
      const r = parseXlogRecord(rec.info, rec.mainData)
      switch (r.kind) {
        case 'checkpoint_online':
          return note(r, checkpointDesc(r.checkPoint, 'online'))
        case 'checkpoint_shutdown':
          return note(r, checkpointDesc(r.checkPoint, 'shutdown'))
        case 'nextoid':
          return note(r, String(r.nextOid))
        case 'parameter_change':
          return note(
            r,
            `max_connections=${r.maxConnections} max_worker_processes=${r.maxWorkerProcesses} ` +
              `max_wal_senders=${r.maxWalSenders} max_prepared_xacts=${r.maxPreparedXacts} ` +
              `max_locks_per_xact=${r.maxLocksPerXact} wal_level=${WAL_LEVEL[r.walLevel]} ` +
              `wal_log_hints=${onOff(r.walLogHints)} track_commit_timestamp=${onOff(r.trackCommitTimestamp)}`,
          )
        case 'restore_point':
          return note(r, r.name)
        case 'fpw_change':
          return note(r, String(r.fullPageWrites))
        case 'backup_end':
          return note(r, formatLsn(r.startLsn))
        case 'switch':
          return note(r, '')
        default:
          return null
      }
    }
    case 'Storage': {
      const r = parseSmgrRecord(rec.info, rec.mainData)
      if (r.kind === 'create') return note(r, relPath(r.rnode, r.forkNum))
      return note(r, `${relPath(r.rnode)} to ${r.blkno} blocks flags ${r.flags}`)
    }
    case 'CLOG': {
      const r = parseClogRecord(rec.info, rec.mainData)
      if (r.kind === 'zeropage') return note(r, `page ${r.pageno}`)
      return note(r, `page ${r.pageno}; oldest xid ${r.oldestXact}`)
    }
    case 'Database': {
      const r = parseDbaseRecord(rec.info, rec.mainData)
      if (r.kind === 'create_file_copy') {
        return note(r, `copy dir ${r.srcTablespaceId}/${r.srcDbId} to ${r.tablespaceId}/${r.dbId}`)
      }
      if (r.kind === 'create_wal_log') return note(r, `create dir ${r.tablespaceId}/${r.dbId}`)
      return note(r, `dir${r.tablespaceIds.map((ts) => ` ${ts}/${r.dbId}`).join('')}`)
    }
    case 'Tablespace': {
      const r = parseTblspcRecord(rec.info, rec.mainData)
      return note(r, r.kind === 'create' ? `${r.tsId} "${r.path}"` : String(r.tsId))
    }
    case 'MultiXact': {
      const r = parseMultiXactRecord(rec.info, rec.mainData)
      switch (r.kind) {
        case 'zero_off_page':
        case 'zero_mem_page':
          return note(r, String(r.pageno))
        case 'create_id': {
          const members = r.members.map((m) => `${m.xid} (${MULTIXACT_STATUS[m.status]}) `).join('')
          return note(r, `${r.mid} offset ${r.moff} nmembers ${r.members.length}: ${members}`)
        }
        case 'truncate_id':
          return note(
            r,
            `offsets [${r.startTruncOff}, ${r.endTruncOff}), members [${r.startTruncMemb}, ${r.endTruncMemb})`,
          )
      }
      break
    }
    case 'RelMap': {
      const r = parseRelMapRecord(rec.info, rec.mainData)
      return note(r, `database ${r.dbId} tablespace ${r.tsId} size ${r.nbytes}`)
    }
  }
  return null
}

const PARSED_RMGRS = new Set([
  'XLOG',
  'Transaction',
  'Storage',
  'CLOG',
  'Database',
  'Tablespace',
  'MultiXact',
  'RelMap',
  'Heap',
  'Heap2',
])

const HEAP_FLAGS = /flags 0x([0-9A-F]{2})/

function checkHeap(line: DumpLine, rec: RawRecord, seen: Seen): void {
  const name = line.desc.split(' ')[0].replace('+INIT', '')
  const rmid = line.rmgr === 'Heap' ? RM_HEAP_ID : RM_HEAP2_ID
  expect(rec.rmid).toBe(rmid)
  const clears = heapVmClears(rmid, rec.info, rec.mainData)
  const flagsText = HEAP_FLAGS.exec(line.desc)?.[1]
  const flags = flagsText === undefined ? 0 : Number.parseInt(flagsText, 16)
  let expected: { block0: number; oldPage: number } | null = null
  switch (`${line.rmgr} ${name}`) {
    case 'Heap INSERT':
    case 'Heap DELETE':
    case 'Heap2 MULTI_INSERT':
      expected = flags & 0x01 ? { block0: 3, oldPage: 0 } : null
      break
    case 'Heap UPDATE':
    case 'Heap HOT_UPDATE':
      expected = flags & 0x03 ? { block0: flags & 0x02 ? 3 : 0, oldPage: flags & 0x01 ? 3 : 0 } : null
      break
    case 'Heap LOCK':
    case 'Heap2 LOCK_UPDATED':
      expected = flags & 0x01 ? { block0: 2, oldPage: 0 } : null
      break
    case 'Heap2 VISIBLE': {
      const visible = parseHeapVisible(rec.info, rec.mainData)
      expect(line.desc).toBe(`VISIBLE cutoff xid ${visible.cutoffXid} flags 0x${flagsText}`)
      expect(visible.flags).toBe(flags)
      push(seen, 'Heap2 VISIBLE', visible)
      break
    }
  }
  expect(clears, `${line.rmgr} ${line.desc} at ${formatLsn(line.lsn)}`).toEqual(expected)
  if (clears) push(seen, `${line.rmgr} ${name} clears`, clears)
}

async function insertLsn(pg: PgCluster): Promise<Lsn> {
  const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn')
  return parseLsn(lsn)
}

/** Polls until the WAL insert position moves: the checkpointer logs FPW_CHANGE on its own after a reload. */
async function waitForWalAfter(pg: PgCluster, lsn: Lsn): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await insertLsn(pg)) > lsn) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('the checkpointer wrote no WAL after pg_reload_conf()')
}

async function setFullPageWrites(pg: PgCluster, on: boolean): Promise<void> {
  const before = await insertLsn(pg)
  const change = on ? 'ALTER SYSTEM RESET full_page_writes' : 'ALTER SYSTEM SET full_page_writes = off'
  await pg.sql([change, 'SELECT pg_reload_conf()'])
  await waitForWalAfter(pg, before)
}

async function runWorkload(pg: PgCluster): Promise<void> {
  const tablespaceDir = path.join(pg.baseDir, 'ts1')
  await fs.mkdir(tablespaceDir)
  const owner = await fs.stat(pg.baseDir)
  await fs.chown(tablespaceDir, owner.uid, owner.gid)
  // pg has no COPY FROM STDIN, so the server reads the rows from a file.
  const copyFile = path.join(pg.baseDir, 'vm.copy')
  await fs.writeFile(copyFile, '601\ta\n602\tb\n')
  await pg.sql([
    'CREATE TABLE t (id int PRIMARY KEY, v text)',
    "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 10) g",
    'CREATE TABLE d1 (a int)',
    'BEGIN',
    'SAVEPOINT s1',
    'INSERT INTO t VALUES (100)',
    'SAVEPOINT s2',
    'INSERT INTO t VALUES (101)',
    'RELEASE s2',
    'DROP TABLE d1',
    'COMMIT',
    'BEGIN',
    'CREATE TABLE a1 (a int)',
    'INSERT INTO a1 VALUES (1)',
    'ROLLBACK',
    'BEGIN',
    'INSERT INTO t VALUES (200)',
    "PREPARE TRANSACTION 'gid-commit'",
    "COMMIT PREPARED 'gid-commit'",
    'BEGIN',
    'CREATE TABLE p2 (a int)',
    "PREPARE TRANSACTION 'gid-abort'",
    "ROLLBACK PREPARED 'gid-abort'",
    'BEGIN',
    'SELECT * FROM t WHERE id = 1 FOR KEY SHARE',
    'SAVEPOINT a',
    'SELECT * FROM t WHERE id = 1 FOR UPDATE',
    'COMMIT',
    'CREATE TABLE many (a int)',
    `DO $$ BEGIN FOR i IN 1..70 LOOP BEGIN INSERT INTO many VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP;
END $$`,
    'DO $$ BEGIN FOR i IN 1..(32768 + 5 - txid_current()::int) LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$',
    'CREATE DATABASE dbc STRATEGY FILE_COPY',
    'CREATE DATABASE dbw STRATEGY WAL_LOG',
    'DROP DATABASE dbc',
    'BEGIN',
    'CREATE TABLE tt (a int)',
    'INSERT INTO tt VALUES (1)',
    'TRUNCATE tt',
    'COMMIT',
    'TRUNCATE t',
    'VACUUM FULL pg_class',
    "SELECT pg_create_restore_point('rp-records')",
    `CREATE TABLESPACE ts1 LOCATION '${tablespaceDir}'`,
    'CREATE TABLE in_ts (a int) TABLESPACE ts1',
    'DROP TABLE in_ts',
    'DROP TABLESPACE ts1',
    'CREATE TABLE vm (a int, pad text)',
    "INSERT INTO vm SELECT g, repeat('x', 100) FROM generate_series(1, 600) g",
    'VACUUM (FREEZE) vm',
    "UPDATE vm SET pad = repeat('z', 3000) WHERE a = 100",
    'DELETE FROM vm WHERE a = 500',
    `COPY vm FROM '${copyFile}'`,
    "UPDATE vm SET pad = 'y' WHERE a = 200",
    'SELECT * FROM vm WHERE a = 400 FOR UPDATE',
    'CHECKPOINT',
    "SELECT pg_backup_start('records', true)",
    'SELECT * FROM pg_backup_stop(false)',
  ])
  await setFullPageWrites(pg, false)
  await setFullPageWrites(pg, true)
  await pg.sql('ALTER SYSTEM SET max_connections = 50')
  await pg.stop()
  await pg.start()
  // Left prepared across the shutdown checkpoint, which writes its state file to pg_twophase.
  await pg.sql([
    'CREATE TABLE tp (a int)',
    'BEGIN',
    'INSERT INTO tp VALUES (1)',
    "PREPARE TRANSACTION 'gid-open'",
  ])
}

describe('WAL record parsers on real PostgreSQL 15 WAL', () => {
  it('decode the main data of every record as pg_waldump describes it', async () => {
    await withPostgres(
      {
        name: 'records',
        settings: { wal_level: 'logical', max_prepared_transactions: 5, wal_keep_size: '1GB' },
      },
      async (pg) => {
        const start = await insertLsn(pg)
        await runWorkload(pg)
        const [{ pgClassNode }] = await pg.query<{ pgClassNode: number }>(
          `SELECT pg_relation_filenode('pg_class') AS "pgClassNode"`,
        )
        // xid has no pg type parser, so it arrives as text.
        const [{ xid }] = await pg.query<{ xid: string }>(
          "SELECT transaction AS xid FROM pg_prepared_xacts WHERE gid = 'gid-open'",
        )
        const openXid = Number(xid)
        await pg.stop()

        const reader = new SegmentReader(pg.walDir)
        const { stdout: control } = await pg.run('pg_controldata', ['-D', pg.datadir])
        const shutdownLsn = parseLsn(/Latest checkpoint location:\s+(\S+)/.exec(control)![1])
        const lines = await walDump(pg, start, reader.record(shutdownLsn).end)
        expect(lines.at(-1)?.lsn).toBe(shutdownLsn)

        const seen: Seen = new Map()
        let checked = 0
        for (const line of lines) {
          if (!PARSED_RMGRS.has(line.rmgr)) continue
          const rec = reader.record(line.lsn)
          expect(rec.totLen).toBe(line.totLen)
          if (line.rmgr === 'Transaction') checkXact(line, rec, seen)
          else if (line.rmgr === 'Heap' || line.rmgr === 'Heap2') checkHeap(line, rec, seen)
          else {
            const expected = rebuildDesc(line, rec, seen)
            if (expected !== null) expect(expected, `${line.rmgr} at ${formatLsn(line.lsn)}`).toBe(line.desc)
          }
          checked++
        }
        expect(checked).toBeGreaterThan(1000)

        const all = <T>(key: string) => (seen.get(key) ?? []) as T[]
        const commits = all<XactCompletion>('Transaction COMMIT')
        const savepointCommit = commits.find((c) => c.subxacts.length === 2 && c.relfilenodes.length === 1)
        expect(savepointCommit?.droppedStats).toHaveLength(1)
        expect(commits.some((c) => c.subxacts.length >= 64)).toBe(true)
        expect(all<XactCompletion>('Transaction ABORT').some((a) => a.relfilenodes.length === 1)).toBe(true)
        const prepares = all<XactPrepare>('Transaction PREPARE')
        expect(prepares.map((p) => p.gid)).toEqual(['gid-commit', 'gid-abort', 'gid-open'])
        const [commitPrepared] = all<XactCompletion>('Transaction COMMIT_PREPARED')
        expect(commitPrepared).toMatchObject({ xid: prepares[0].xid, gid: 'gid-commit' })
        const [abortPrepared] = all<XactCompletion>('Transaction ABORT_PREPARED')
        expect(abortPrepared).toMatchObject({ xid: prepares[1].xid, gid: 'gid-abort' })
        expect(abortPrepared.relfilenodes).toEqual(prepares[1].abortRels)
        expect(all('Transaction ASSIGNMENT').length).toBeGreaterThan(0)
        expect(all('Transaction INVALIDATION').length).toBeGreaterThan(0)

        // The state file a checkpoint writes is exactly the PREPARE main data plus its CRC-32C.
        const open = prepares[2]
        expect(open.xid).toBe(openXid)
        const stateFile = await fs.readFile(
          path.join(pg.datadir, 'pg_twophase', open.xid.toString(16).toUpperCase().padStart(8, '0')),
        )
        const crc = Buffer.alloc(4)
        crc.writeUInt32LE(crc32c(open.stateData))
        expect(stateFile.equals(Buffer.concat([open.stateData, crc]))).toBe(true)

        const members = all<{ members: { status: number }[] }>('MultiXact CREATE_ID')
        expect(members.some((m) => m.members.map((x) => x.status).join() === '0,3')).toBe(true)
        expect(all('MultiXact ZERO_MEM_PAGE').length).toBeGreaterThan(0)
        expect(all<{ pageno: number }>('CLOG ZEROPAGE').map((z) => z.pageno)).toContain(1)

        expect(all('Database CREATE_FILE_COPY')).toHaveLength(1)
        expect(all('Database CREATE_WAL_LOG')).toHaveLength(1)
        expect(all('Database DROP')).toHaveLength(1)
        expect(all('Tablespace CREATE')).toHaveLength(1)
        expect(all('Tablespace DROP')).toHaveLength(1)
        expect(all<{ flags: number; blkno: number }>('Storage TRUNCATE')).toContainEqual(
          expect.objectContaining({ blkno: 0, flags: 7 }),
        )
        expect(all<{ forkNum: number }>('Storage CREATE').some((c) => c.forkNum === 1)).toBe(true)

        // The last map update for database 5 is the file Postgres left on disk, byte for byte.
        const maps = all<{ dbId: number; data: Buffer }>('RelMap UPDATE').filter((m) => m.dbId === 5)
        const onDisk = await fs.readFile(path.join(pg.datadir, 'base/5/pg_filenode.map'))
        expect(maps.at(-1)?.data.equals(onDisk)).toBe(true)
        expect(decodeRelMapFile(onDisk)).toContainEqual({ mapOid: 1259, mapFilenode: pgClassNode })

        expect(all('XLOG CHECKPOINT_ONLINE').length).toBeGreaterThan(0)
        expect(all('XLOG CHECKPOINT_SHUTDOWN').length).toBe(2)
        expect(all('XLOG NEXTOID').length).toBeGreaterThan(0)
        expect(all<{ maxConnections: number }>('XLOG PARAMETER_CHANGE').map((p) => p.maxConnections)).toEqual(
          [50],
        )
        expect(all<{ name: string }>('XLOG RESTORE_POINT').map((r) => r.name)).toEqual(['rp-records'])
        expect(all<{ fullPageWrites: boolean }>('XLOG FPW_CHANGE').map((f) => f.fullPageWrites)).toEqual([
          false,
          true,
        ])
        expect(all('XLOG BACKUP_END')).toHaveLength(1)
        expect(all('XLOG SWITCH').length).toBeGreaterThan(0)

        for (const key of ['Heap DELETE', 'Heap LOCK', 'Heap2 MULTI_INSERT']) {
          expect(all(`${key} clears`).length, key).toBeGreaterThan(0)
        }
        const updates = [...all<{ oldPage: number }>('Heap UPDATE clears'), ...all('Heap HOT_UPDATE clears')]
        expect(updates.length).toBeGreaterThan(0)
        expect(all('Heap2 VISIBLE').length).toBeGreaterThan(0)
      },
    )
  })
})
