/**
 * End-to-end check of rmgrName / recordTypeName against pg_waldump itself: run a workload that logs
 * many record types, then compare pg_waldump's `rmgr:` and `desc:` columns for every record with what
 * we compute from the raw xl_rmid / xl_info bytes read straight out of the segment files.
 *
 * Self-contained on purpose (no cluster harness): it only needs a PG15 installation. Its SQL goes through
 * the harness's node-postgres helper, though.
 */
import {
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  parseLsn,
  segmentNumber,
  segmentOffset,
  walFileName,
  XLOG_BLCKSZ,
} from '../../src/postgres/lsn.js'
import { recordTypeName, rmgrName } from '../../src/postgres/rmgr.js'
import { query, queryText } from '../harness/sql.js'

const PG_BIN = '/usr/lib/postgresql/15/bin'
const SIZE_OF_XLOG_RECORD = 24
const TIMELINE = 1

/** Postgres refuses to run as root, so when we are root every server-side tool runs as `postgres`. */
const asRoot = process.getuid?.() === 0

function pgTool(tool: string, args: string[]) {
  const bin = join(PG_BIN, tool)
  return asRoot ? execa('runuser', ['-u', 'postgres', '--', bin, ...args]) : execa(bin, args)
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Statements run one by one on one session, which pg_backup_start/stop need. Each block is there for the
 * record types named in its comment.
 */
function workload(dir: string): string[] {
  return [
    'CREATE EXTENSION bloom',
    "SELECT pg_create_logical_replication_slot('zenith_slot', 'test_decoding')",

    // Heap2 MULTI_INSERT(+INIT) from COPY, then indexes of every access method (XLOG FPI, BRIN CREATE_INDEX,
    // Hash INIT_META_PAGE / INIT_BITMAP_PAGE, Storage CREATE, Heap INPLACE, Transaction INVALIDATION, Heap2 NEW_CID)
    'CREATE TABLE t (id int PRIMARY KEY, v text, n int, arr int[], p point, c int)',
    `COPY t FROM '${dir}/t.copy'`,
    'CREATE INDEX t_v ON t (v) WITH (fillfactor = 100)',
    'CREATE INDEX t_n ON t (n)',
    'CREATE INDEX t_gin ON t USING gin (arr) WITH (fastupdate = on)',
    'CREATE INDEX t_gist ON t USING gist (p)',
    'CREATE INDEX t_spgist ON t USING spgist (p)',
    'CREATE INDEX t_brin ON t USING brin (id) WITH (pages_per_range = 1)',
    'CREATE INDEX t_bloom ON t USING bloom (id, n)',

    // Heap INSERT, Btree INSERT_LEAF / SPLIT_* / DEDUP, Gin INSERT_LISTPAGE, Gist / SPGist / BRIN / Generic inserts
    `INSERT INTO t SELECT g, md5(g::text), g % 20, ARRAY[g % 10, g % 7], point(g % 97, g % 89), 0
  FROM generate_series(3001, 3400) g`,
    // Heap UPDATE (indexed column) and HOT_UPDATE (unindexed column), BRIN SAMEPAGE_UPDATE / UPDATE
    "UPDATE t SET v = v || 'x' WHERE id % 50 = 0",
    'UPDATE t SET c = c + 1 WHERE id % 40 = 0',
    // Heap DELETE, then VACUUM: Heap2 PRUNE / VACUUM / VISIBLE, Btree VACUUM / MARK_PAGE_HALFDEAD / UNLINK_PAGE,
    // Gin cleanup of the pending list, Storage TRUNCATE at the tail
    'DELETE FROM t WHERE id BETWEEN 1 AND 1500 OR id > 3300',
    'VACUUM t',
    'VACUUM FREEZE t',
    "SELECT brin_desummarize_range('t_brin', 0)",
    "SELECT brin_summarize_new_values('t_brin')",

    // Hash inserts that split buckets and add overflow pages
    'CREATE TABLE h (id int)',
    'CREATE INDEX h_hash ON h USING hash (id) WITH (fillfactor = 10)',
    'INSERT INTO h SELECT g FROM generate_series(1, 600) g',
    'INSERT INTO h SELECT 7 FROM generate_series(1, 300)',
    'DELETE FROM h WHERE id % 3 = 0',
    'VACUUM h',

    // Heap HEAP_CONFIRM (speculative insertion), LOCK, MultiXact CREATE_ID (a lock taken again by a subxact)
    'CREATE TABLE u (id int PRIMARY KEY, v int)',
    'INSERT INTO u SELECT g, g FROM generate_series(1, 10) g ON CONFLICT DO NOTHING',
    'INSERT INTO u VALUES (1, 1) ON CONFLICT DO NOTHING',
    'BEGIN',
    'SELECT * FROM u WHERE id = 1 FOR SHARE',
    'SAVEPOINT s1',
    'SELECT * FROM u WHERE id = 1 FOR UPDATE',
    'UPDATE u SET v = 2 WHERE id = 2',
    'ROLLBACK TO SAVEPOINT s1',
    'RELEASE SAVEPOINT s1',
    'COMMIT',
    // Transaction ABORT
    'BEGIN',
    'INSERT INTO u VALUES (100, 100)',
    'ROLLBACK',
    // Transaction ASSIGNMENT: more than 64 subtransactions with xids
    `DO $$
BEGIN
  FOR i IN 1..70 LOOP
    BEGIN
      INSERT INTO u VALUES (1000 + i, i);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END $$`,
    // Transaction PREPARE / COMMIT_PREPARED / ABORT_PREPARED
    'BEGIN',
    'INSERT INTO u VALUES (200, 200)',
    "PREPARE TRANSACTION 'zenith_p1'",
    "COMMIT PREPARED 'zenith_p1'",
    'BEGIN',
    'INSERT INTO u VALUES (201, 201)',
    "PREPARE TRANSACTION 'zenith_p2'",
    "ROLLBACK PREPARED 'zenith_p2'",

    // Heap TRUNCATE (wal_level=logical), Standby LOCK
    'CREATE TABLE tr (id int)',
    'INSERT INTO tr VALUES (1)',
    'TRUNCATE tr',
    // Storage TRUNCATE: truncating a table in the transaction that created it truncates its files in place
    'BEGIN',
    'CREATE TABLE tr2 (id int)',
    'INSERT INTO tr2 VALUES (1)',
    'TRUNCATE tr2',
    'COMMIT',
    // Sequence LOG
    'CREATE SEQUENCE s',
    "SELECT nextval('s') FROM generate_series(1, 50)",
    // LogicalMessage MESSAGE
    "SELECT pg_logical_emit_message(true, 'zenith', 'transactional')",
    "SELECT pg_logical_emit_message(false, 'zenith', 'not transactional')",
    // ReplicationOrigin SET / DROP
    "SELECT pg_replication_origin_create('zenith_origin')",
    "SELECT pg_replication_origin_advance('zenith_origin', '0/12345678')",
    "SELECT pg_replication_origin_drop('zenith_origin')",
    // Heap2 REWRITE (catalog rewrite while a logical slot exists) and RelMap UPDATE
    'VACUUM FULL pg_class',
    // Database CREATE_WAL_LOG / CREATE_FILE_COPY / DROP
    'CREATE DATABASE d_wal STRATEGY WAL_LOG',
    'CREATE DATABASE d_copy STRATEGY FILE_COPY',
    'DROP DATABASE d_wal',
    'DROP DATABASE d_copy',
    // Tablespace CREATE / DROP
    `CREATE TABLESPACE zts LOCATION '${dir}/ts'`,
    'CREATE TABLE in_ts (id int) TABLESPACE zts',
    'DROP TABLE in_ts',
    'DROP TABLESPACE zts',
    // XLOG RESTORE_POINT, BACKUP_END, CHECKPOINT_ONLINE, FPI_FOR_HINT (hint bits after a checkpoint), SWITCH
    "SELECT pg_create_restore_point('zenith_rp')",
    "SELECT pg_backup_start('zenith', true)",
    'SELECT * FROM pg_backup_stop(false)',
    'CREATE TABLE hints (id int)',
    'INSERT INTO hints SELECT generate_series(1, 500)',
    'CHECKPOINT',
    'SELECT count(*) FROM hints',
    "SELECT pg_drop_replication_slot('zenith_slot')",
    'SELECT pg_switch_wal()',
    'INSERT INTO hints VALUES (0)',
  ]
}

function copyData(): string {
  const lines: string[] = []
  for (let g = 1; g <= 3000; g++) {
    lines.push(
      [g, `row-${(g * 7919) % 3001}`, g % 20, `{${g % 10},${g % 7}}`, `(${g % 97},${g % 89})`, 0].join('\t'),
    )
  }
  return `${lines.join('\n')}\n`
}

/** Reads xl_info and xl_rmid of the record at `lsn`, or null when its header straddles a page. */
function readInfoAndRmid(walDir: string, lsn: number, cache: Map<string, number>): [number, number] | null {
  if ((lsn % XLOG_BLCKSZ) + SIZE_OF_XLOG_RECORD > XLOG_BLCKSZ) return null
  const name = walFileName(TIMELINE, segmentNumber(lsn, DEFAULT_WAL_SEGMENT_SIZE), DEFAULT_WAL_SEGMENT_SIZE)
  let fd = cache.get(name)
  if (fd === undefined) {
    fd = openSync(join(walDir, name), 'r')
    cache.set(name, fd)
  }
  const header = Buffer.alloc(SIZE_OF_XLOG_RECORD)
  readSync(fd, header, 0, SIZE_OF_XLOG_RECORD, segmentOffset(lsn, DEFAULT_WAL_SEGMENT_SIZE))
  return [header[16], header[17]]
}

/** The identify part of pg_waldump's desc column: the first word, or the whole `UNKNOWN (x)`. */
function identifyToken(desc: string): string {
  const unknown = /^UNKNOWN \([0-9a-f]+\)/.exec(desc)
  if (unknown) return unknown[0]
  const space = desc.indexOf(' ')
  return space < 0 ? desc : desc.slice(0, space)
}

const LINE =
  /^rmgr: (\S+)\s+len \(rec\/tot\):.*, lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F]+\/[0-9A-F]+, desc: (.*)$/

describe('rmgr names against pg_waldump', () => {
  it('names every record of a varied workload exactly as pg_waldump does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zenith-rmgr-'))
    const data = join(dir, 'data')
    let started = false
    try {
      mkdirSync(join(dir, 'ts'))
      writeFileSync(join(dir, 't.copy'), copyData())
      if (asRoot) {
        const uid = Number((await execa('id', ['-u', 'postgres'])).stdout)
        const gid = Number((await execa('id', ['-g', 'postgres'])).stdout)
        for (const p of [dir, join(dir, 'ts'), join(dir, 't.copy')]) chownSync(p, uid, gid)
      }
      await pgTool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync'])

      const port = await freePort()
      const options = [
        '-c wal_consistency_checking=all',
        '-c wal_level=logical',
        '-c max_prepared_transactions=5',
        "-c listen_addresses=''",
        `-c unix_socket_directories=${dir}`,
        `-p ${port}`,
        // FPI_FOR_HINT needs hint-bit logging; without data checksums only this turns it on.
        '-c wal_log_hints=on',
        // The workload checkpoints several times; keep every segment it wrote for pg_waldump.
        '-c wal_keep_size=4GB',
        // a throwaway cluster: durability only costs time here
        '-c fsync=off',
      ].join(' ')
      await pgTool('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-o', options, 'start'])
      started = true

      const connstr = `postgresql://postgres@${encodeURIComponent(dir)}:${port}/postgres`
      const lsnNow = async () =>
        (await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_insert_lsn() AS lsn'))[0].lsn

      const start = await lsnNow()
      await queryText(connstr, workload(dir))
      const end = await lsnNow()

      await pgTool('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'])
      started = false

      const walDir = join(data, 'pg_wal')
      const dump = await execa(join(PG_BIN, 'pg_waldump'), ['-p', walDir, '-s', start, '-e', end], {
        maxBuffer: 1024 * 1024 * 1024,
      })
      const lines = dump.stdout.split('\n').filter((l) => l.length > 0)
      expect(lines.length).toBeGreaterThan(1000)

      const seen = new Set<string>()
      const fds = new Map<string, number>()
      let checked = 0
      try {
        for (const line of lines) {
          const m = LINE.exec(line)
          if (!m) throw new Error(`unexpected pg_waldump output line: ${line}`)
          const [, rmgr, lsnText, desc] = m
          const raw = readInfoAndRmid(walDir, parseLsn(lsnText), fds)
          if (!raw) continue
          const [info, rmid] = raw
          const type = identifyToken(desc)
          expect(`${lsnText} ${rmgrName(rmid)} ${recordTypeName(rmid, info)}`).toBe(
            `${lsnText} ${rmgr} ${type}`,
          )
          seen.add(`${rmgr} ${type}`)
          checked++
        }
      } finally {
        for (const fd of fds.values()) closeSync(fd)
      }
      expect(checked).toBeGreaterThan(lines.length * 0.9)
      expect(seen.size, [...seen.keys()].sort().join(', ')).toBeGreaterThanOrEqual(40)
    } finally {
      if (started)
        await pgTool('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
