import fs from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import {
  BLCKSZ,
  getPageLsn,
  isNewPage,
  PG_PAGE_LAYOUT_VERSION,
  readPageHeader,
  setPageLsn,
} from '../../src/postgres/data-page.js'
import { formatLsn } from '../../src/postgres/lsn.js'
import { pageChecksum, setPageChecksum } from '../../src/postgres/page-checksum.js'
import {
  type ControlFile,
  DBState,
  decodeControlFile,
  encodeControlFile,
  FLOATFORMAT_VALUE,
  PG_CONTROL_FILE_SIZE,
  WalLevel,
} from '../../src/postgres/pg-control.js'
import { type PgCluster, runAsPostgres, withPostgres, withTempDir } from '../harness/postgres.js'

/** pg_controldata prints `Label:   value` lines; the value may itself contain colons (NextXID, times). */
async function controlData(pg: PgCluster, datadir = pg.datadir): Promise<Map<string, string>> {
  const { stdout } = await pg.run('pg_controldata', ['-D', datadir])
  const fields = new Map<string, string>()
  for (const line of stdout.split('\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

const onOff = (b: boolean) => (b ? 'on' : 'off')

/** pg_controldata formats times with strftime("%c") in the C locale and the local time zone. */
function cTime(seconds: number): string {
  const d = new Date(seconds * 1000)
  const day = d.toLocaleString('en-US', { weekday: 'short' })
  const month = d.toLocaleString('en-US', { month: 'short' })
  const two = (n: number) => String(n).padStart(2, '0')
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
  return `${day} ${month} ${String(d.getDate()).padStart(2, ' ')} ${time} ${d.getFullYear()}`
}

function expectMatchesControlData(cf: ControlFile, fields: Map<string, string>): void {
  const cp = cf.checkPointCopy
  const expected: Record<string, string> = {
    'pg_control version number': String(cf.pgControlVersion),
    'Catalog version number': String(cf.catalogVersionNo),
    'Database system identifier': cf.systemIdentifier.toString(),
    'Database cluster state': 'shut down',
    'pg_control last modified': cTime(cf.time),
    'Latest checkpoint location': formatLsn(cf.checkPoint),
    "Latest checkpoint's REDO location": formatLsn(cp.redo),
    "Latest checkpoint's TimeLineID": String(cp.thisTimeLineId),
    "Latest checkpoint's PrevTimeLineID": String(cp.prevTimeLineId),
    "Latest checkpoint's full_page_writes": onOff(cp.fullPageWrites),
    "Latest checkpoint's NextXID": `${Math.floor(cp.nextXid / 2 ** 32)}:${cp.nextXid % 2 ** 32}`,
    "Latest checkpoint's NextOID": String(cp.nextOid),
    "Latest checkpoint's NextMultiXactId": String(cp.nextMulti),
    "Latest checkpoint's NextMultiOffset": String(cp.nextMultiOffset),
    "Latest checkpoint's oldestXID": String(cp.oldestXid),
    "Latest checkpoint's oldestXID's DB": String(cp.oldestXidDb),
    "Latest checkpoint's oldestActiveXID": String(cp.oldestActiveXid),
    "Latest checkpoint's oldestMultiXid": String(cp.oldestMulti),
    "Latest checkpoint's oldestMulti's DB": String(cp.oldestMultiDb),
    "Latest checkpoint's oldestCommitTsXid": String(cp.oldestCommitTsXid),
    "Latest checkpoint's newestCommitTsXid": String(cp.newestCommitTsXid),
    'Time of latest checkpoint': cTime(cp.time),
    'Fake LSN counter for unlogged rels': formatLsn(cf.unloggedLsn),
    'Minimum recovery ending location': formatLsn(cf.minRecoveryPoint),
    "Min recovery ending loc's timeline": String(cf.minRecoveryPointTli),
    'Backup start location': formatLsn(cf.backupStartPoint),
    'Backup end location': formatLsn(cf.backupEndPoint),
    'End-of-backup record required': cf.backupEndRequired ? 'yes' : 'no',
    'wal_level setting': ['minimal', 'replica', 'logical'][cf.walLevel],
    'wal_log_hints setting': onOff(cf.walLogHints),
    'max_connections setting': String(cf.maxConnections),
    'max_worker_processes setting': String(cf.maxWorkerProcesses),
    'max_wal_senders setting': String(cf.maxWalSenders),
    'max_prepared_xacts setting': String(cf.maxPreparedXacts),
    'max_locks_per_xact setting': String(cf.maxLocksPerXact),
    'track_commit_timestamp setting': onOff(cf.trackCommitTimestamp),
    'Maximum data alignment': String(cf.maxAlign),
    'Database block size': String(cf.blcksz),
    'Blocks per segment of large relation': String(cf.relsegSize),
    'WAL block size': String(cf.xlogBlcksz),
    'Bytes per WAL segment': String(cf.xlogSegSize),
    'Maximum length of identifiers': String(cf.nameDataLen),
    'Maximum columns in an index': String(cf.indexMaxKeys),
    'Maximum size of a TOAST chunk': String(cf.toastMaxChunkSize),
    'Size of a large-object chunk': String(cf.loblksize),
    'Float8 argument passing': cf.float8ByVal ? 'by value' : 'by reference',
    'Data page checksum version': String(cf.dataChecksumVersion),
    'Mock authentication nonce': cf.mockAuthenticationNonce.toString('hex'),
  }
  for (const [label, value] of Object.entries(expected)) {
    expect({ label, value: fields.get(label) }).toEqual({ label, value })
  }
}

describe('pg_control against PostgreSQL 15', () => {
  it('decodes what pg_controldata shows, re-encodes byte-identically and detects corruption', async () => {
    const settings = { wal_level: 'logical', max_connections: 42, max_prepared_transactions: 3 }
    await withPostgres({ name: 'pg-control', settings }, async (pg) => {
      await pg.sql(['CREATE TABLE t (id int)', 'INSERT INTO t SELECT generate_series(1, 100)'])
      await pg.stop()
      const file = await fs.readFile(path.join(pg.datadir, 'global/pg_control'))
      expect(file.length).toBe(PG_CONTROL_FILE_SIZE)

      const cf = decodeControlFile(file)
      expect(cf.state).toBe(DBState.DB_SHUTDOWNED)
      expect(cf.walLevel).toBe(WalLevel.WAL_LEVEL_LOGICAL)
      expect(cf.maxConnections).toBe(42)
      expect(cf.maxPreparedXacts).toBe(3)
      expect(cf.floatFormat).toBe(FLOATFORMAT_VALUE)
      expect(cf.checkPointCopy.redo).toBe(cf.checkPoint)
      expect(cf.systemIdentifier).toBeGreaterThan(2n ** 32n)
      expectMatchesControlData(cf, await controlData(pg))

      expect(encodeControlFile(cf).equals(file)).toBe(true)

      const flipped = Buffer.from(file)
      flipped[100] ^= 0x01
      expect(() => decodeControlFile(flipped)).toThrow(
        /CRC mismatch: stored at offset 288 is 0x[0-9A-F]{8}, CRC-32C/,
      )
      const wrongVersion = Buffer.from(file)
      wrongVersion.writeUInt32LE(1201, 8)
      expect(() => decodeControlFile(wrongVersion)).toThrow(
        /pg_control_version at offset 8 is 1201, expected 1300/,
      )
      expect(() => decodeControlFile(file.subarray(0, 200))).toThrow(/200 bytes, expected at least 296/)

      // Postgres itself must accept a file we wrote, not only our own decoder.
      const rewritten = encodeControlFile({ ...cf, time: cf.time - 3600, maxConnections: 7 })
      await fs.writeFile(path.join(pg.datadir, 'global/pg_control'), rewritten)
      const fields = await controlData(pg)
      expect(fields.get('pg_control last modified')).toBe(cTime(cf.time - 3600))
      expect(fields.get('max_connections setting')).toBe('7')
      await pg.start()
      expect(await pg.sql('SELECT count(*) FROM t')).toBe('100')
    })
  })
})

/** The main, FSM and VM fork files (paths relative to the datadir) that exist for each relation. */
async function relationForks(datadir: string, relPaths: string[]): Promise<string[]> {
  const files: string[] = []
  for (const rel of relPaths) {
    for (const fork of ['', '_fsm', '_vm']) {
      const exists = await fs.stat(path.join(datadir, rel + fork)).then(
        () => true,
        () => false,
      )
      if (exists) files.push(rel + fork)
    }
  }
  return files
}

describe('data page checksums against PostgreSQL 15', () => {
  it('match pd_checksum on every page, and pg_checksums accepts pages we re-checksummed', async () => {
    await withPostgres({ name: 'checksums', initdbArgs: ['--data-checksums'] }, async (pg) => {
      await pg.sql([
        'CREATE TABLE t (id int PRIMARY KEY, payload text)',
        'INSERT INTO t SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 5000) i',
        'DELETE FROM t WHERE id % 7 = 0',
        'VACUUM t',
        'CHECKPOINT',
      ])
      const relations = ['t', 't_pkey', 'pg_class', 'pg_attribute', 'pg_proc', 'pg_database', 'pg_authid']
      const relPaths = (
        await pg.query<{ path: string }>(
          'SELECT pg_relation_filepath(r) AS path FROM unnest($1::regclass[]) WITH ORDINALITY AS u(r, i) ORDER BY i',
          [relations],
        )
      ).map((row) => row.path)
      expect(relPaths[0]).toMatch(/^base\/\d+\/\d+$/)
      expect(relPaths[5]).toMatch(/^global\/\d+$/)
      await pg.stop()

      const cf = decodeControlFile(await fs.readFile(path.join(pg.datadir, 'global/pg_control')))
      expect(cf.dataChecksumVersion).toBe(1)

      const files = await relationForks(pg.datadir, relPaths)
      expect(files).toContain(`${relPaths[0]}_vm`)
      let checked = 0
      for (const file of files) {
        const data = await fs.readFile(path.join(pg.datadir, file))
        expect(data.length % BLCKSZ).toBe(0)
        for (let blkno = 0; blkno < data.length / BLCKSZ; blkno++) {
          const page = data.subarray(blkno * BLCKSZ, (blkno + 1) * BLCKSZ)
          if (isNewPage(page)) continue
          const header = readPageHeader(page)
          expect(header.layoutVersion).toBe(PG_PAGE_LAYOUT_VERSION)
          expect({ file, blkno, checksum: pageChecksum(page, blkno) }).toEqual({
            file,
            blkno,
            checksum: header.checksum,
          })
          checked++
        }
      }
      expect(checked).toBeGreaterThan(100)

      await withTempDir(async (tmp) => {
        const copy = path.join(tmp, 'data')
        const [cp, cpArgs] = runAsPostgres('cp', ['-a', pg.datadir, copy])
        await execa(cp, cpArgs)
        const tableFile = path.join(copy, relPaths[0])
        const blkno = 3
        const data = await fs.readFile(tableFile)
        const page = data.subarray(blkno * BLCKSZ, (blkno + 1) * BLCKSZ)
        const oldChecksum = readPageHeader(page).checksum
        setPageLsn(page, getPageLsn(page) - 8)
        const newChecksum = setPageChecksum(page, blkno)
        expect(newChecksum).not.toBe(oldChecksum)
        await fs.writeFile(tableFile, data)
        const { stdout } = await pg.run('pg_checksums', ['--check', '-D', copy])
        expect(stdout).toMatch(/Bad checksums:\s+0/)

        setPageLsn(page, getPageLsn(page) - 8)
        await fs.writeFile(tableFile, data)
        await expect(pg.run('pg_checksums', ['--check', '-D', copy])).rejects.toThrow(
          new RegExp(`checksum verification failed in file ".*${relPaths[0]}", block ${blkno}`),
        )
      }, 'zenith-checksums-')
    })
  })
})
