/**
 * Commit timestamps through zenith, with real PostgreSQL 15 and track_commit_timestamp = on:
 *
 * - a compute streams to a pageserver (its synchronous standby) through pgbench, subtransactions, a
 *   prepared transaction and a commit applied by a replication origin; computes rebuilt from the page
 *   service at the end, from a branch and from a fullbackup at an LSN mid-run give every row the commit
 *   timestamp and origin the original gave it then; the rebuilt pg_commit_ts and pg_xact segments are the
 *   original's byte for byte, and an import of the original's datadir brings them too;
 * - vacuum freezing every database truncates pg_commit_ts (and moves the oldest multixact), and the
 *   timeline follows: the same segments, and the oldest and newest commit-timestamp xids and the oldest
 *   multixact of pg_control, right after the truncation and at the end.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import { generateId } from '../../src/lib/ids.js'
import type { Pageserver } from '../../src/pageserver/pageserver.js'
import { WAL_RECEIVER_APPLICATION_NAME } from '../../src/pageserver/wal-receiver.js'
import { importDatadir } from '../../src/pgdata/import.js'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { controlData, giveToPgUser } from '../../src/postgres/pg-bin.js'
import { decodeReplOriginCheckpoint } from '../../src/postgres/replorigin-checkpoint.js'
import { readCommitTsEntry, slruSegmentName, transactionIdToCommitTsPage } from '../../src/postgres/slru.js'
import {
  basebackupToFile,
  extractBasebackup,
  ingestWalDir,
  startPostgresFromTar,
  walInsertLsn,
} from '../harness/compute.js'
import { jsonRequest } from '../harness/http.js'
import { computeFromPageService, fullbackupToDir } from '../harness/page-service.js'
import { startTestPageserver } from '../harness/pageserver.js'
import { makeTempDir, type PgCluster, startPostgres } from '../harness/postgres.js'
import { waitUntil } from '../harness/wait.js'

let dir: string
let ps: Pageserver
let api: string
let pgPort: number
const logged: { level: string; msg: string }[] = []
const http = (method: string, p: string, body?: unknown) => jsonRequest(api, method, p, body)

beforeAll(async () => {
  dir = await makeTempDir('zenith-commit-ts-')
  ;({ ps, api, pgPort } = await startTestPageserver(dir, (level, msg) => logged.push({ level, msg })))
})

afterAll(async () => {
  await ps?.stop()
  rmSync(dir, { recursive: true, force: true })
  // An ingest that refused a record would have logged it (and hung every commit).
  expect(logged.filter((l) => l.level === 'error')).toEqual([])
})

const SETTINGS = { track_commit_timestamp: 'on', max_prepared_transactions: 5, autovacuum: 'off' }

/** µs since 2000-01-01, as pg_commit_ts stores TimestampTz. */
const PG_EPOCH_SQL = `((extract(epoch FROM t.timestamp) - 946684800) * 1000000)::bigint`

/**
 * Every row of the pgbench tables and of `marked` as `key|xmin|commit timestamp|origin|µs`, in key order:
 * pg_xact_commit_timestamp_origin(xmin) answers from pg_commit_ts and the range pg_control allows.
 */
async function commitTimes(pg: PgCluster): Promise<string[]> {
  const text = await pg.sql(`
    SELECT r.k, r.x, t.timestamp, t.roident, ${PG_EPOCH_SQL} FROM (
      SELECT 'history ' || ctid AS k, xmin AS x FROM pgbench_history
      UNION ALL SELECT 'account ' || lpad(aid::text, 6, '0'), xmin FROM pgbench_accounts
      UNION ALL SELECT 'teller ' || tid, xmin FROM pgbench_tellers
      UNION ALL SELECT 'branch ' || bid, xmin FROM pgbench_branches
      UNION ALL SELECT 'marked ' || note, xmin FROM marked
    ) r, LATERAL pg_xact_commit_timestamp_origin(r.x) t ORDER BY r.k`)
  return text.split('\n')
}

/** Equal row lists, failing on the first row that differs rather than on a diff of 100,000 rows. */
function expectSameRows(got: string[], want: string[], what: string): void {
  expect(got.length, `${what}: rows`).toBe(want.length)
  const i = got.findIndex((row, n) => row !== want[n])
  expect(i < 0 ? 'all equal' : got[i], `${what}: first row that differs`).toBe(i < 0 ? 'all equal' : want[i])
}

const originStatus = (pg: PgCluster) =>
  pg.sql('SELECT external_id, remote_lsn FROM pg_replication_origin_status ORDER BY 1')

/** The SLRU segment files of a datadir directory, name → bytes. */
function segments(datadir: string, slru: string): Map<string, Buffer> {
  const d = path.join(datadir, slru)
  return new Map(readdirSync(d).map((f) => [f, readFileSync(path.join(d, f))]))
}

function expectSameSegments(got: string, want: string, slru: string): void {
  const a = segments(got, slru)
  const b = segments(want, slru)
  expect([...a.keys()], slru).toEqual([...b.keys()])
  for (const [name, bytes] of b) expect(a.get(name)?.equals(bytes), `${slru}/${name}`).toBe(true)
}

describe('commit timestamps', () => {
  it('streamed from pgbench and friends: rebuilt, branched and imported computes answer as the original', async () => {
    const tenantId: string = (await http('POST', '/v1/tenant', {})).json
    const timelineId = generateId()
    expect(
      (await http('POST', `/v1/tenant/${tenantId}/timeline`, { new_timeline_id: timelineId })).status,
    ).toBe(201)
    const lastRecordLsn = async (tl = timelineId): Promise<Lsn> =>
      parseLsn((await http('GET', `/v1/tenant/${tenantId}/timeline/${tl}`)).json.last_record_lsn)
    const clusters: PgCluster[] = []
    const dirs: string[] = []
    const repo = await Repository.open(path.join(dir, 'import-repo'), { background: false })
    try {
      const pg = await computeFromPageService(pgPort, tenantId, timelineId, {
        name: 'ts-original',
        settings: {
          ...SETTINGS,
          synchronous_standby_names: WAL_RECEIVER_APPLICATION_NAME,
          synchronous_commit: 'remote_write',
        },
      })
      clusters.push(pg)
      const rx = await http('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
        wal_source_connstr: pg.connectionString(),
      })
      expect(rx.status).toBe(200)

      await pg.run('pgbench', ['-i', '-q', '-s', '1', 'postgres'])
      await pg.sql([
        'CREATE TABLE marked (note text)',
        // Rows inserted by subtransactions, a third of them rolled back.
        `DO $$ BEGIN FOR i IN 1..60 LOOP BEGIN INSERT INTO marked VALUES ('sub ' || lpad(i::text, 2, '0'));
           IF i % 3 = 0 THEN RAISE EXCEPTION 'undo'; END IF; EXCEPTION WHEN raise_exception THEN NULL; END;
         END LOOP; END $$`,
        'BEGIN',
        "INSERT INTO marked VALUES ('prepared top')",
        'SAVEPOINT s',
        "INSERT INTO marked VALUES ('prepared sub')",
        "PREPARE TRANSACTION 'ts_2pc'",
        "COMMIT PREPARED 'ts_2pc'",
        // A commit applied by a replication origin keeps the origin's time; the origin's progress moves.
        "SELECT pg_replication_origin_create('zenith_origin')",
        "SELECT pg_replication_origin_advance('zenith_origin', '0/AB000000')",
        "SELECT pg_replication_origin_create('gone_origin')",
        "SELECT pg_replication_origin_advance('gone_origin', '0/CD000000')",
        "SELECT pg_replication_origin_drop('gone_origin')",
        "SELECT pg_replication_origin_session_setup('zenith_origin')",
        'BEGIN',
        "SELECT pg_replication_origin_xact_setup('0/AB001000', '2001-02-03 04:05:06.789+00')",
        "INSERT INTO marked VALUES ('from origin')",
        'COMMIT',
        'SELECT pg_replication_origin_session_reset()',
      ])
      await pg.run('pgbench', ['-n', '-c', '2', '-t', '750', 'postgres'])
      // Mid-run: what every row says now, and the LSN of now once the pageserver has it.
      const midRows = await commitTimes(pg)
      const [{ flushed }] = await pg.query<{ flushed: string }>(
        'SELECT pg_current_wal_flush_lsn() AS flushed',
      )
      await waitUntil(
        'the pageserver has the mid-run WAL',
        async () => (await lastRecordLsn()) >= parseLsn(flushed),
      )
      const mid = (await http('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json.last_record_lsn
      await pg.run('pgbench', ['-n', '-c', '2', '-t', '750', 'postgres'])

      const rows = await commitTimes(pg)
      const history = rows.filter((r) => r.startsWith('history '))
      expect(history).toHaveLength(3000)
      expect(history.filter((r) => r.split('|')[2] === '')).toEqual([])
      expect(rows.find((r) => r.startsWith('marked from origin|'))).toMatch(
        /\|2001-02-03 04:05:06\.789\+00\|1\|/,
      )
      expect(rows.filter((r) => r.startsWith('marked sub '))).toHaveLength(40)
      const origins = await originStatus(pg)
      expect(origins).toBe('zenith_origin|0/AB001000')
      const [{ roident }] = await pg.query<{ roident: number }>(
        "SELECT roident FROM pg_replication_origin WHERE roname = 'zenith_origin'",
      )
      await pg.stop()
      const ownTs = path.join(pg.datadir, 'pg_commit_ts')

      // Postgres' own files, read with zenith's decoders: every timestamp is where slru.ts says.
      for (const row of history) {
        const [, xid, , roident, us] = row.split('|')
        const x = Number(xid)
        const seg = Math.floor(transactionIdToCommitTsPage(x) / 32)
        const file = readFileSync(path.join(ownTs, slruSegmentName(seg)))
        const page = file.subarray((transactionIdToCommitTsPage(x) % 32) * 8192).subarray(0, 8192)
        expect(readCommitTsEntry(page, x), `xid ${x}`).toEqual({ time: Number(us), nodeId: Number(roident) })
      }
      expect(
        decodeReplOriginCheckpoint(readFileSync(path.join(pg.datadir, 'pg_logical/replorigin_checkpoint'))),
      ).toEqual([{ roident, remoteLsn: parseLsn('0/AB001000') }])

      // The timeline's segments at the end are the original's, byte for byte.
      const tip = await makeTempDir('zenith-ts-tip-')
      dirs.push(tip)
      await fullbackupToDir(pgPort, tenantId, timelineId, tip)
      await giveToPgUser(tip)
      expectSameSegments(tip, pg.datadir, 'pg_commit_ts')
      expectSameSegments(tip, pg.datadir, 'pg_xact')
      const own = await controlData(pg.datadir)
      const rebuiltControl = await controlData(tip)
      for (const label of [
        "Latest checkpoint's NextXID",
        "Latest checkpoint's oldestCommitTsXid",
        "Latest checkpoint's newestCommitTsXid",
        'track_commit_timestamp setting',
      ])
        expect(rebuiltControl[label], label).toBe(own[label])

      const rebuilt = await computeFromPageService(pgPort, tenantId, timelineId, {
        name: 'ts-rebuilt',
        settings: SETTINGS,
      })
      clusters.push(rebuilt)
      expectSameRows(await commitTimes(rebuilt), rows, 'rebuilt at the end')
      expect(await originStatus(rebuilt)).toBe(origins)

      // Mid-run, on a branch and from a fullbackup of the timeline at that LSN.
      const branchId = generateId()
      const branched = await http('POST', `/v1/tenant/${tenantId}/timeline`, {
        new_timeline_id: branchId,
        ancestor_timeline_id: timelineId,
        ancestor_start_lsn: mid,
      })
      expect(branched.status).toBe(201)
      const onBranch = await computeFromPageService(pgPort, tenantId, branchId, {
        name: 'ts-branch',
        settings: SETTINGS,
      })
      clusters.push(onBranch)
      expectSameRows(await commitTimes(onBranch), midRows, 'branch mid-run')
      await onBranch.destroy()
      const atMid = await computeFromPageService(pgPort, tenantId, timelineId, {
        name: 'ts-mid',
        lsn: mid,
        settings: SETTINGS,
      })
      clusters.push(atMid)
      expectSameRows(await commitTimes(atMid), midRows, 'fullbackup mid-run')
      await atMid.destroy()

      // pg_last_committed_xact() lives in shared memory: after a clean start, the original knows none
      // either; the next commit is the same transaction on both, and each reports it.
      await pg.start()
      const last =
        'SELECT xid, timestamp IS NOT NULL, timestamp = pg_xact_commit_timestamp(xid) FROM pg_last_committed_xact()'
      expect(await rebuilt.sql(last)).toBe(await pg.sql(last))
      expect(await rebuilt.sql(last)).toBe('|f|')
      const [next] = await Promise.all([
        pg.sql('SELECT txid_current()'),
        rebuilt.sql('SELECT txid_current()'),
      ])
      expect(await rebuilt.sql(last)).toBe(`${next}|t|t`)
      expect(await pg.sql(last)).toBe(`${next}|t|t`)
      await pg.stop()

      // An import of the original's datadir brings pg_commit_ts and the origins' progress along.
      const { timeline: imported } = importDatadir(repo.createTenant(), pg.datadir)
      const tar = path.join(dir, 'imported.tar')
      await basebackupToFile(imported, tar)
      const fromImport = await startPostgresFromTar(tar, { name: 'ts-import', settings: SETTINGS })
      clusters.push(fromImport)
      expectSameRows(await commitTimes(fromImport), rows, 'imported')
      expect(await originStatus(fromImport)).toBe(origins)
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }, 300_000)

  it('truncates pg_commit_ts and moves the oldest multixact as freezing every database does', async () => {
    const source = await startPostgres({ name: 'ts-trunc-source' })
    await source.stop()
    const repo = await Repository.open(path.join(dir, 'trunc-repo'), { background: false })
    const clusters: PgCluster[] = [source]
    const dirs: string[] = []
    let tars = 0
    const at = async (lsn: Lsn) => {
      const tar = path.join(dir, `trunc-${++tars}.tar`)
      await basebackupToFile(tl, tar, lsn)
      const d = await extractBasebackup(tar)
      dirs.push(d)
      return { tar, dir: d, control: await controlData(d) }
    }
    const { timeline: tl } = importDatadir(repo.createTenant(), source.datadir)
    try {
      const first = path.join(dir, 'trunc-first.tar')
      const { checkpointLsn } = await basebackupToFile(tl, first)
      const c = await startPostgresFromTar(first, {
        name: 'ts-trunc',
        settings: { ...SETTINGS, wal_consistency_checking: 'all', wal_keep_size: '2GB' },
      })
      clusters.push(c)
      await c.sql([
        'CREATE TABLE early (v int)',
        'INSERT INTO early VALUES (1)',
        // A multixact: a row locked by a transaction and, in another mode, by its subtransaction.
        'BEGIN',
        'SELECT * FROM early FOR KEY SHARE',
        'SAVEPOINT a',
        'SELECT * FROM early FOR UPDATE',
        'COMMIT',
        // Past the first pg_commit_ts segment: 32 pages of 819 xids.
        'DO $$ BEGIN FOR i IN 1..27000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$',
        "UPDATE pg_database SET datallowconn = true WHERE datname = 'template0'",
      ])
      for (const db of ['template0', 'template1', 'postgres']) await c.sql('VACUUM FREEZE', { db })
      await c.sql("UPDATE pg_database SET datallowconn = false WHERE datname = 'template0'")
      const afterVacuum = await walInsertLsn(c)
      await c.sql('CREATE TABLE late AS SELECT 1 AS v')
      const lateTs = await c.sql('SELECT pg_xact_commit_timestamp(xmin) FROM late')
      await c.stop()
      // The compute did truncate, and moved its horizons.
      expect(readdirSync(path.join(c.datadir, 'pg_commit_ts'))).not.toContain('0000')
      const own = await controlData(c.datadir)
      expect(own["Latest checkpoint's oldestMultiXid"]).not.toBe('1')
      await ingestWalDir(tl, c.walDir, { start: checkpointLsn })

      // Right after the truncations, before a checkpoint record says so, the horizons have moved.
      const rightAfter = await at(afterVacuum)
      for (const label of ["Latest checkpoint's oldestCommitTsXid", "Latest checkpoint's oldestMultiXid"])
        expect(rightAfter.control[label], label).toBe(own[label])
      expect(readdirSync(path.join(rightAfter.dir, 'pg_commit_ts'))).toEqual(
        readdirSync(path.join(c.datadir, 'pg_commit_ts')),
      )
      const tip = await at(tl.lastRecordLsn)
      expectSameSegments(tip.dir, c.datadir, 'pg_commit_ts')
      for (const label of [
        "Latest checkpoint's oldestCommitTsXid",
        "Latest checkpoint's newestCommitTsXid",
        "Latest checkpoint's oldestMultiXid",
        "Latest checkpoint's oldestXID",
        "Latest checkpoint's NextXID",
        "Latest checkpoint's NextMultiXactId",
      ])
        expect(tip.control[label], label).toBe(own[label])

      const rebuilt = await startPostgresFromTar(tip.tar, { name: 'ts-trunc-rebuilt', settings: SETTINGS })
      clusters.push(rebuilt)
      expect(await rebuilt.sql('SELECT pg_xact_commit_timestamp(xmin) IS NULL FROM early')).toBe('t')
      expect(await rebuilt.sql('SELECT pg_xact_commit_timestamp(xmin) FROM late')).toBe(lateTs)
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }, 300_000)
})
