/**
 * initdb → import → basebackup at the import LSN → a stock Postgres starts from it, with no recovery, and
 * accepts writes.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import { importDatadir } from '../../src/pgdata/import.js'
import { formatLsn } from '../../src/postgres/lsn.js'
import { basebackupToFile, startPostgresFromTar } from '../harness/compute.js'
import { startPostgres } from '../harness/postgres.js'

const work = mkdtempSync(path.join(os.tmpdir(), 'zenith-basebackup-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('basebackup', () => {
  it('starts stock Postgres from an imported datadir without recovery, and it accepts writes', async () => {
    const source = await startPostgres({ name: 'bb-source' })
    const repo = await Repository.open(path.join(work, 'repo'), { background: false })
    try {
      await source.sql(
        'CREATE TABLE kept AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g',
      )
      const before = await source.sql('SELECT count(*), sum(id) FROM kept')
      await source.stop()
      const { timeline, lsn } = importDatadir(repo.createTenant(), source.datadir)

      const tarFile = path.join(work, 'base.tar')
      const result = await basebackupToFile(timeline, tarFile)
      expect(result.lsn).toBe(lsn)
      expect(result.checkpointLsn).toBeGreaterThanOrEqual(lsn)

      const compute = await startPostgresFromTar(tarFile, { name: 'bb-compute' })
      try {
        expect(await compute.sql('SELECT count(*), sum(id) FROM kept')).toBe(before)
        // No recovery: the server came up from the shutdown checkpoint and its WAL continues after it.
        const log = await compute.logTail(200)
        expect(log).not.toMatch(/redo starts|database system was interrupted/)
        expect(log).toMatch(/database system was shut down at/)
        const [{ insertLsn }] = await compute.query<{ insertLsn: string }>(
          'SELECT pg_current_wal_insert_lsn() AS "insertLsn"',
        )
        expect(insertLsn).not.toBe(formatLsn(result.checkpointLsn))
        await compute.sql([
          'INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(5001, 6000) g',
          'CHECKPOINT',
        ])
        expect(await compute.sql('SELECT count(*) FROM kept')).toBe('6000')
        await compute.sql('CREATE DATABASE fresh')
        await compute.stop()
        await compute.start()
        expect(await compute.sql('SELECT count(*) FROM kept')).toBe('6000')
      } finally {
        await compute.destroy()
      }
    } finally {
      await repo.close({ flush: false })
      await source.destroy()
    }
  })
})
