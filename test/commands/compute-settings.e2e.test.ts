/**
 * Settings zenith cannot serve are refused by `pg create` and `pg start` in one line, and nothing is left
 * behind; one it can serve that a user might doubt (full_page_writes = off) survives a rebuilt compute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadClusterConfig, saveClusterConfig } from '../../src/control/repo-config.js'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { queryText } from '../harness/sql.js'

describe('compute settings', () => {
  let c: Cluster

  beforeAll(async () => {
    c = await newCluster('settings', {}, ['--num-safekeepers', '0'])
    await c.ok('start')
  })

  afterAll(() => teardown(c))

  const endpoints = async () =>
    (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string }[]).map((e) => e.name)

  it('pg create refuses one zenith cannot serve, in one line, and creates nothing', async () => {
    const r = await c.zenith(
      'pg',
      'create',
      'main',
      '--name',
      'minimal',
      '-c',
      'work_mem=8MB',
      '-c',
      'wal_level=minimal',
    )
    expect(r.exitCode).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines[0]).toMatch(
      /^Error: setting wal_level = 'minimal' cannot be served: .*valid: replica, logical$/,
    )
    expect(await endpoints()).not.toContain('minimal')
    const j = await c.zenith(
      'pg',
      'create',
      'main',
      '--name',
      'ro',
      '--lsn',
      '0/1000000',
      '-c',
      'hot_standby=off',
      '--json',
    )
    expect(j.exitCode).toBe(1)
    expect(JSON.parse(j.stdout).error).toMatchObject({
      kind: 'user_input',
      message: expect.stringMatching(/hot_standby = 'off'/),
    })
  })

  it('pg start refuses an endpoint whose settings became unservable, before starting anything', async () => {
    await c.ok('pg', 'create', 'main', '--name', 'edited')
    const cfg = loadClusterConfig(c.repo)
    cfg.endpoints.edited.settings = { synchronous_commit: 'remote_apply' }
    saveClusterConfig(c.repo, cfg)
    const r = await c.zenith('pg', 'start', 'edited')
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/^Error: setting synchronous_commit = 'remote_apply' cannot be served: /)
    const [row] = (
      JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; status: string }[]
    ).filter((e) => e.name === 'edited')
    expect(row.status).toBe('stopped')
  })

  it('serves full_page_writes = off: a compute rebuilt from the pageserver has every row', async () => {
    await c.ok('pg', 'create', 'main', '--name', 'nofpw', '-c', 'full_page_writes=off')
    await c.ok('pg', 'start', 'nofpw')
    const connstr = (name: string) =>
      c
        .ok('pg', 'list', '--json')
        .then(
          (o) => (JSON.parse(o) as { name: string; connstr: string }[]).find((e) => e.name === name)!.connstr,
        )
    const url = await connstr('nofpw')
    expect(await queryText(url, 'SHOW full_page_writes')).toBe('off')
    await queryText(
      url,
      "CREATE TABLE t AS SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 20000) i",
    )
    await queryText(url, "UPDATE t SET pad = 'y' WHERE i % 3 = 0")
    await c.ok('pg', 'stop', 'nofpw', '--destroy')
    // The endpoint is gone with its settings; `pg start <branch>` builds a compute from the pageserver.
    await c.ok('pg', 'start', 'main')
    expect(
      await queryText(
        await connstr('main'),
        "SELECT count(*) || '/' || count(*) FILTER (WHERE pad = 'y') FROM t",
      ),
    ).toBe('20000/6666')
  })
})
