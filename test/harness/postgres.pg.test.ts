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
      expect(await pg.psql('SHOW wal_consistency_checking')).toBe('all')
      expect(await pg.psql('SHOW cluster_name')).toBe("it's a \\test")
      expect(await pg.psql('SHOW log_checkpoints')).toBe('on')
      expect(await pg.psql('SHOW fsync')).toBe('off')
      expect(await pg.psql('SELECT inet_server_port()')).toBe(String(pg.port))
      expect(await pg.psql('SHOW data_directory')).toBe(pg.datadir)
      expect(pg.connectionString('db')).toBe(`postgresql://postgres@127.0.0.1:${pg.port}/db`)
      expect(pg.walDir).toBe(path.join(pg.datadir, 'pg_wal'))
      expect(existsSync(path.join(pg.socketDir, `.s.PGSQL.${pg.port}`))).toBe(true)

      expect(await pg.psql('SELECT 1, 2; SELECT 3')).toBe('1|2\n3')
      await expect(pg.psql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/)

      await pg.stop()
      expect(existsSync(path.join(pg.datadir, 'postmaster.pid'))).toBe(false)
      await expect(pg.psql('SELECT 1')).rejects.toThrow(/connection|server/i)
      await pg.stop()

      await pg.start()
      expect(await pg.psql('SHOW wal_consistency_checking')).toBe('all')
      const { stdout } = await pg.run('pg_controldata', [])
      expect(stdout).toMatch(/Database cluster state:\s+in production/)

      await pg.run('pg_ctl', ['-w', '-m', 'immediate', 'stop'])
      await pg.stop()
      await pg.start()
      expect(await pg.psql('SELECT 1')).toBe('1')
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
        expect(await pg.psql('SELECT current_user')).toBe('postgres')
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(seen).toBeDefined()
    const pg = seen!
    expect(existsSync(pg.baseDir)).toBe(false)
    await expect(pg.psql('SELECT 1')).rejects.toThrow()
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
