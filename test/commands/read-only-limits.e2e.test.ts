/**
 * A read-only endpoint is a hot standby of the branch as it was at its LSN, and a hot standby must allow
 * at least the connections (and workers, walsenders, prepared transactions, locks) its primary did: those
 * come from the pg_control that PARAMETER_CHANGE keeps current, so an endpoint after the branch's compute
 * raised max_connections to 200 starts with 200, one before it with 100, and one that asks for less than
 * its LSN needs is refused in one line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { queryText } from '../harness/sql.js'

describe('read-only endpoints and the limits of their LSN', () => {
  let c: Cluster
  let before: string
  let after: string

  beforeAll(async () => {
    c = await newCluster('ro-limits')
    await c.ok('start')
  })
  afterAll(() => teardown(c))

  const connstrOf = async (name: string) =>
    (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]).find(
      (e) => e.name === name,
    )!.connstr

  it('takes max_connections from the branch at its LSN', async () => {
    await c.ok('pg', 'start', 'main')
    const main = await connstrOf('main')
    await queryText(main, 'CREATE TABLE t AS SELECT 1 AS i')
    before = await queryText(main, 'SELECT pg_current_wal_flush_lsn()')
    await c.ok('pg', 'stop', 'main', '--destroy')
    await c.ok('pg', 'create', 'main', '--name', 'big', '-c', 'max_connections=200')
    await c.ok('pg', 'start', 'big')
    const big = await connstrOf('big')
    await queryText(big, 'INSERT INTO t VALUES (2)')
    after = await queryText(big, 'SELECT pg_current_wal_flush_lsn()')

    await c.ok('pg', 'create', 'main', '--name', 'after', '--lsn', after)
    await c.ok('pg', 'start', 'after')
    const ro = await connstrOf('after')
    expect(await queryText(ro, 'SHOW max_connections')).toBe('200')
    expect(await queryText(ro, 'SELECT count(*) FROM t')).toBe('2')

    await c.ok('pg', 'create', 'main', '--name', 'before', '--lsn', before)
    await c.ok('pg', 'start', 'before')
    expect(await queryText(await connstrOf('before'), 'SHOW max_connections')).toBe('100')
  })

  it('refuses a read-only endpoint that asks for less than its LSN needs', async () => {
    await c.ok('pg', 'create', 'main', '--name', 'low', '--lsn', after, '-c', 'max_connections=150')
    const r = await c.zenith('pg', 'start', 'low')
    expect(r.exitCode).toBe(1)
    expect(r.stderr.split('\n')[0]).toMatch(
      /^Error: endpoint "low" sets max_connections = 150, below the 200 that branch main had at \d+\/[0-9A-F]+: a hot standby needs at least that$/,
    )
  })
})
