/**
 * pg_control as WAL ingest keeps it: a compute restarted with new settings logs PARAMETER_CHANGE, and a
 * basebackup at any LSN carries the settings of that moment — what pg_controldata shows, and what a hot
 * standby started from it is held to (its own settings must be at least those).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { importDatadir } from '../../src/pgdata/import.js'
import type { Lsn } from '../../src/postgres/lsn.js'
import { controlData } from '../../src/postgres/pg-bin.js'
import {
  basebackupToFile,
  extractBasebackup,
  ingestWalDir,
  startPostgresFromTar,
  walInsertLsn,
} from '../harness/compute.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'

const work = mkdtempSync(path.join(os.tmpdir(), 'zenith-control-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Every setting PARAMETER_CHANGE carries, as ALTER SYSTEM takes it and pg_controldata labels it. */
const RAISED: [setting: string, value: string, label: string, shown: string][] = [
  ['max_connections', '200', 'max_connections setting', '200'],
  ['max_worker_processes', '12', 'max_worker_processes setting', '12'],
  ['max_wal_senders', '12', 'max_wal_senders setting', '12'],
  ['max_prepared_transactions', '7', 'max_prepared_xacts setting', '7'],
  ['max_locks_per_transaction', '128', 'max_locks_per_xact setting', '128'],
  ['wal_level', 'logical', 'wal_level setting', 'logical'],
  ['wal_log_hints', 'on', 'wal_log_hints setting', 'on'],
  ['track_commit_timestamp', 'on', 'track_commit_timestamp setting', 'on'],
]
const SETTING_LABELS = RAISED.map((r) => r[2])
/** What a standby needs to follow the raised settings (hot standby wants each at least the primary's). */
const STANDBY_SETTINGS = {
  max_connections: 200,
  max_worker_processes: 12,
  max_wal_senders: 12,
  max_prepared_transactions: 7,
  max_locks_per_transaction: 128,
}

describe('pg_control kept current', () => {
  it('takes every PARAMETER_CHANGE setting, and a hot standby at each LSN is held to the settings of then', async () => {
    const source = await startPostgres({ name: 'control-source' })
    await source.stop()
    const repo = await Repository.open(path.join(work, 'repo'), { background: false })
    const clusters: PgCluster[] = [source]
    const dirs: string[] = []
    let tars = 0
    const tarAt = async (tl: Timeline, lsn?: Lsn) => {
      const file = path.join(work, `base-${++tars}.tar`)
      return { file, ...(await basebackupToFile(tl, file, lsn)) }
    }
    const controlAt = async (tl: Timeline, lsn: Lsn) => {
      const dir = await extractBasebackup((await tarAt(tl, lsn)).file)
      dirs.push(dir)
      return { dir, control: await controlData(dir) }
    }
    try {
      const { timeline: tl } = importDatadir(repo.createTenant(), source.datadir)
      const first = await tarAt(tl)
      const c = await startPostgresFromTar(first.file, {
        name: 'control-compute',
        settings: { wal_consistency_checking: 'all', wal_keep_size: '1GB' },
      })
      clusters.push(c)
      await c.sql('CREATE TABLE t AS SELECT generate_series(1, 100) AS v')
      const before = await walInsertLsn(c)

      await c.sql(RAISED.map(([setting, value]) => `ALTER SYSTEM SET ${setting} = '${value}'`))
      await c.stop()
      await c.start()
      await c.sql('INSERT INTO t VALUES (101)')
      const after = await walInsertLsn(c)

      await c.sql('ALTER SYSTEM SET track_commit_timestamp = off')
      await c.stop()
      await c.start()
      await c.sql('INSERT INTO t VALUES (102)')
      await c.stop()
      const compute = await controlData(c.datadir)
      await ingestWalDir(tl, c.walDir, { start: first.checkpointLsn })

      const earlier = await controlAt(tl, before)
      expect(earlier.control['max_connections setting']).toBe('100')
      expect(earlier.control['track_commit_timestamp setting']).toBe('off')
      const later = await controlAt(tl, after)
      for (const [, , label, shown] of RAISED) expect(later.control[label], label).toBe(shown)
      // Turning track_commit_timestamp on started pg_commit_ts at nextXid, as the compute did.
      expect(readdirSync(path.join(later.dir, 'pg_commit_ts'))).toEqual(['0000'])
      expect(later.control["Latest checkpoint's oldestCommitTsXid"]).not.toBe('0')

      // At the tip the settings are the compute's own, and turning it off removed pg_commit_ts as there.
      const tip = await controlAt(tl, tl.lastRecordLsn)
      for (const label of SETTING_LABELS) expect(tip.control[label], label).toBe(compute[label])
      expect(tip.control['track_commit_timestamp setting']).toBe('off')
      expect(readdirSync(path.join(tip.dir, 'pg_commit_ts'))).toEqual([])
      expect(readdirSync(path.join(c.datadir, 'pg_commit_ts'))).toEqual([])
      for (const label of ["Latest checkpoint's oldestCommitTsXid", "Latest checkpoint's newestCommitTsXid"])
        expect(tip.control[label], label).toBe(compute[label])

      // A hot standby at the later LSN starts with settings at least the primary's, and refuses less.
      const laterTar = (await tarAt(tl, after)).file
      const standby = await startPostgresFromTar(laterTar, {
        name: 'standby-200',
        standby: true,
        settings: STANDBY_SETTINGS,
      })
      clusters.push(standby)
      expect(
        await standby.sql(['SELECT pg_is_in_recovery()', 'SHOW max_connections', 'SELECT count(*) FROM t']),
      ).toBe('t\n200\n101')
      await expect(
        startPostgresFromTar(laterTar, {
          name: 'standby-150',
          standby: true,
          settings: { ...STANDBY_SETTINGS, max_connections: 150 },
        }),
      ).rejects.toThrow(
        /max_connections = 150 is a lower setting than on the primary server, where its value was 200/,
      )
      // One at the earlier LSN is held to the settings of then.
      const early = await startPostgresFromTar((await tarAt(tl, before)).file, {
        name: 'standby-100',
        standby: true,
        settings: { max_connections: 100 },
      })
      clusters.push(early)
      expect(await early.sql(['SELECT pg_is_in_recovery()', 'SELECT count(*) FROM t'])).toBe('t\n100')
    } finally {
      await repo.close({ flush: false })
      for (const c of clusters) await c.destroy()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }, 180_000)
})
