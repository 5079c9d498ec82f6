/** An initdb'd (and used) datadir imported into a timeline reads back block for block. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import {
  CONTROLFILE_KEY,
  DBDIR_KEY,
  decodeDbDir,
  decodeRelDir,
  decodeSize,
  relBlockKey,
  relDirKey,
  relmapKey,
  relSizeKey,
  SlruKind,
  slruBlockKey,
} from '../../src/pgdata/datadir-mapping.js'
import { ImportError, importDatadir, importLsnOf } from '../../src/pgdata/import.js'
import { pageStart, segmentNumber, walFileName } from '../../src/postgres/lsn.js'
import { WalDecoder } from '../../src/postgres/wal-decoder.js'
import { startPostgres } from '../harness/postgres.js'

const repoDir = mkdtempSync(path.join(os.tmpdir(), 'zenith-import-'))
afterAll(() => rmSync(repoDir, { recursive: true, force: true }))

describe('import of a datadir', () => {
  it('stores every block, size, directory, SLRU page and pg_control of a shut-down cluster', async () => {
    const pg = await startPostgres({ name: 'import' })
    try {
      await pg.sql('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g')
      await pg.sql(['CREATE INDEX t_v ON t (v)', 'VACUUM t', 'CREATE DATABASE other'])
      const [{ dbOid, relPath }] = await pg.query<{ dbOid: number; relPath: string }>(
        `SELECT oid AS "dbOid", pg_relation_filepath('t') AS "relPath" FROM pg_database WHERE datname = 'postgres'`,
      )
      await pg.stop()

      const repo = await Repository.open(repoDir, { background: false })
      const tenant = repo.createTenant()
      const { timeline: tl, lsn, relations, blocks } = importDatadir(tenant, pg.datadir)
      expect(relations).toBeGreaterThan(300)
      expect(blocks).toBeGreaterThan(1000)
      await tl.checkpoint()
      await repo.close()

      // Read it back through a fresh repository, so only what reached the layer files counts.
      const again = await Repository.open(repoDir, { background: false })
      const t = again.tenant(tenant.tenantId).timeline(tl.timelineId)
      const dbs = decodeDbDir(t.get(DBDIR_KEY, lsn)!)
      expect(dbs.map((d) => d.dbNode)).toContain(dbOid)
      expect(dbs.length).toBe(readdirSync(path.join(pg.datadir, 'base')).length + 1)
      let checked = 0
      for (const d of dbs) {
        const dir =
          d.dbNode === 0 ? path.join(pg.datadir, 'global') : path.join(pg.datadir, 'base', String(d.dbNode))
        expect(t.get(relmapKey(d.spcNode, d.dbNode), lsn)).toEqual(
          readFileSync(path.join(dir, 'pg_filenode.map')),
        )
        for (const r of decodeRelDir(t.get(relDirKey(d.spcNode, d.dbNode), lsn)!)) {
          const rel = { spcNode: d.spcNode, dbNode: d.dbNode, relNode: r.relNode, forkNum: r.forkNum }
          const file = path.join(dir, `${r.relNode}${['', '_fsm', '_vm', '_init'][r.forkNum]}`)
          const data = readFileSync(file)
          expect(decodeSize(t.get(relSizeKey(rel), lsn)!)).toBe(data.length / 8192)
          for (let b = 0; b < data.length / 8192; b++) {
            const page = t.get(relBlockKey(rel, b), lsn)!
            if (!page.equals(data.subarray(b * 8192, (b + 1) * 8192))) expect({ file, b }).toBe('equal')
            checked++
          }
        }
      }
      expect(checked).toBe(blocks)
      expect(relPath.startsWith(`base/${dbOid}/`)).toBe(true)
      expect(t.get(CONTROLFILE_KEY, lsn)).toEqual(readFileSync(path.join(pg.datadir, 'global', 'pg_control')))
      const clog = readFileSync(path.join(pg.datadir, 'pg_xact', '0000'))
      expect(t.get(slruBlockKey(SlruKind.Clog, 0, 0), lsn)).toEqual(clog.subarray(0, 8192))
      await again.close()
    } finally {
      await pg.destroy()
    }
  })

  it('stands at the end of the shutdown checkpoint record as the WAL decoder reports it: MAXALIGNed', async () => {
    const pg = await startPostgres({ name: 'import-lsn' })
    try {
      await pg.sql('CREATE TABLE t AS SELECT generate_series(1, 100) AS i')
      await pg.stop()
      const { lsn, cf } = importLsnOf(pg.datadir)
      const segSize = cf.xlogSegSize
      const segNo = segmentNumber(cf.checkPoint, segSize)
      const seg = readFileSync(
        path.join(pg.datadir, 'pg_wal', walFileName(cf.checkPointCopy.thisTimeLineId, segNo, segSize)),
      )
      const from = pageStart(cf.checkPoint)
      const decoder = new WalDecoder({ startLsn: from, segmentSize: segSize })
      decoder.feed(seg.subarray(from % segSize))
      let rec = decoder.next()
      while (rec && rec.lsn < cf.checkPoint) rec = decoder.next()
      expect(rec?.lsn).toBe(cf.checkPoint)
      expect(rec?.endLsn).toBe(lsn)
      expect(lsn % 8).toBe(0)
    } finally {
      await pg.destroy()
    }
  })

  it('refuses a datadir that was not shut down cleanly', async () => {
    const pg = await startPostgres({ name: 'import-crashed' })
    try {
      await pg.sql('CREATE TABLE x (a int)')
      await pg.stop('immediate')
      const repo = await Repository.open(mkdtempSync(path.join(os.tmpdir(), 'zenith-import-bad-')), {
        background: false,
      })
      expect(() => importDatadir(repo.createTenant(), pg.datadir)).toThrow(ImportError)
      expect(() => importDatadir(repo.createTenant(), pg.datadir)).toThrow(/not shut down cleanly/)
      expect(() => importDatadir(repo.createTenant(), '/nonexistent')).toThrow(/not a PostgreSQL datadir/)
      await repo.close()
      rmSync(repo.dir, { recursive: true, force: true })
    } finally {
      await pg.destroy()
    }
  })
})
