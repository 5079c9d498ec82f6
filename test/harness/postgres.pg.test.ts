import { existsSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, type PgCluster, runAsPostgres, startPostgres, withPostgres } from './postgres.js'

describe('postgres test harness', () => {
  it('starts a cluster with custom settings, stops and restarts it', async () => {
    const pg = await startPostgres({
      name: 'harness',
      settings: { wal_consistency_checking: 'all', cluster_name: "it's a \\test", log_checkpoints: true },
    })
    try {
      expect(await pg.sql('SHOW wal_consistency_checking')).toBe('all')
      expect(await pg.sql('SHOW cluster_name')).toBe("it's a \\test")
      expect(await pg.sql('SHOW log_checkpoints')).toBe('on')
      expect(await pg.sql('SHOW fsync')).toBe('off')
      expect(await pg.sql('SELECT inet_server_port()')).toBe(String(pg.port))
      expect(await pg.sql('SHOW data_directory')).toBe(pg.datadir)
      expect(pg.connectionString('db')).toBe(`postgresql://postgres@127.0.0.1:${pg.port}/db`)
      expect(pg.walDir).toBe(path.join(pg.datadir, 'pg_wal'))
      expect(existsSync(path.join(pg.socketDir, `.s.PGSQL.${pg.port}`))).toBe(true)

      expect(await pg.sql('SELECT 1, 2; SELECT 3')).toBe('1|2\n3')
      expect(await pg.sql("SELECT NULL, true, false, 'a|b', ARRAY[1, 2], 2::int8")).toBe('|t|f|a|b|{1,2}|2')
      expect(await pg.sql('CREATE TABLE t (i int)')).toBe('')
      await expect(pg.sql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/)
      expect(await pg.query('SELECT $1::int AS i, $2::text AS s, NULL AS n', [7, 'x'])).toEqual([
        { i: 7, s: 'x', n: null },
      ])
      expect(
        await pg.query<{ d: string }>('SELECT current_database() AS d', [], { db: 'template1' }),
      ).toEqual([{ d: 'template1' }])
      // One string is one transaction: the failure takes the INSERT before it along.
      await expect(pg.sql('INSERT INTO t VALUES (1); SELECT 1 / 0')).rejects.toThrow(/division by zero/)
      await expect(pg.sql('SELECT 1; VACUUM t')).rejects.toThrow(
        /VACUUM cannot run inside a transaction block/,
      )
      expect(await pg.sql('SELECT count(*) FROM t')).toBe('0')
      // A list is a psql script: statements one by one, on one session.
      const script = [
        'INSERT INTO t VALUES (2)',
        'VACUUM t',
        "SET application_name = 'harness'",
        'SHOW application_name',
      ]
      expect(await pg.sql(script)).toBe('harness')
      await expect(pg.sql(['INSERT INTO t VALUES (3)', 'SELECT 1 / 0'])).rejects.toThrow(/division by zero/)
      expect(await pg.sql('SELECT i FROM t ORDER BY i')).toBe('2\n3')
      // Failed queries close their connection too, so only the one asking is left.
      await expect
        .poll(() => pg.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
        .toBe('1')

      await pg.stop()
      expect(existsSync(path.join(pg.datadir, 'postmaster.pid'))).toBe(false)
      await expect(pg.sql('SELECT 1')).rejects.toThrow(/ECONNREFUSED/)
      await pg.stop()

      await pg.start()
      expect(await pg.sql('SHOW wal_consistency_checking')).toBe('all')
      const { stdout } = await pg.run('pg_controldata', [])
      expect(stdout).toMatch(/Database cluster state:\s+in production/)

      await pg.run('pg_ctl', ['-w', '-m', 'immediate', 'stop'])
      await pg.stop()
      await pg.start()
      expect(await pg.sql('SELECT 1')).toBe('1')
    } finally {
      await pg.destroy()
    }
    expect(existsSync(pg.baseDir)).toBe(false)
    await pg.destroy()
  })

  it('withPostgres stops the server and removes the temp dir when the callback throws', async () => {
    let seen: PgCluster | undefined
    await expect(
      withPostgres({}, async (pg) => {
        seen = pg
        expect(await pg.sql('SELECT current_user')).toBe('postgres')
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(seen).toBeDefined()
    const pg = seen!
    expect(existsSync(pg.baseDir)).toBe(false)
    await expect(pg.sql('SELECT 1')).rejects.toThrow()
  })

  it('rejects settings the harness owns', async () => {
    await expect(startPostgres({ settings: { port: 5432 } })).rejects.toThrow(/chosen by the test harness/)
  })

  it('reports the server log when postgres cannot start', async () => {
    await expect(startPostgres({ settings: { shared_buffers: 'lots' } })).rejects.toThrow(
      /last 30 lines of .*postgres\.log ---\n[\s\S]*invalid value for parameter "shared_buffers"/,
    )
  })

  it('hands out bindable ports and wraps commands for the postgres user when root', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    expect(port).toBeLessThan(65536)
    const [cmd, args] = runAsPostgres('id', ['-un'])
    if (process.getuid?.() === 0)
      expect([cmd, args]).toEqual(['runuser', ['-u', 'postgres', '--', 'id', '-un']])
    else expect([cmd, args]).toEqual(['id', ['-un']])
  })
})
