/**
 * Issue 11's reproduction, as a new user ran it: an endpoint with track_commit_timestamp = on takes
 * pgbench's 3,000 transactions without hanging, and a compute rebuilt from the pageserver gives every row
 * the commit timestamp the original gave it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPgBin } from '../../src/postgres/pg-bin.js'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { queryText } from '../harness/sql.js'

describe('commit timestamps through the CLI', () => {
  let c: Cluster

  beforeAll(async () => {
    c = await newCluster('commit-ts')
    await c.ok('start')
  })
  afterAll(() => teardown(c))

  const connstrOf = async (name: string) =>
    (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]).find(
      (e) => e.name === name,
    )!.connstr
  // Every row's commit timestamp, in an order that does not depend on where the rows lie.
  const timestamps = (connstr: string) =>
    queryText(connstr, [
      "SELECT count(*) || ' ' || md5(string_agg(aid || '@' || pg_xact_commit_timestamp(xmin), ',' ORDER BY aid)) FROM pgbench_accounts",
      "SELECT count(*) || ' ' || md5(string_agg(pg_xact_commit_timestamp(xmin)::text, ',' ORDER BY mtime, aid, delta)) FROM pgbench_history",
    ])

  it('runs pgbench with track_commit_timestamp on, and a rebuilt compute has the same timestamps', async () => {
    await c.ok('pg', 'create', 'main', '--name', 'ct', '-c', 'track_commit_timestamp=on')
    await c.ok('pg', 'start', 'ct')
    const ct = await connstrOf('ct')
    await runPgBin('pgbench', ['-i', '-q', '-s', '1', ct], { timeoutMs: 120_000 })
    await runPgBin('pgbench', ['-c', '2', '-t', '1500', ct], { timeoutMs: 180_000 })
    const before = await timestamps(ct)
    expect(before).toMatch(/^100000 [0-9a-f]{32}\n3000 [0-9a-f]{32}$/)
    await c.ok('pg', 'stop', 'ct', '--destroy')
    await c.ok('pg', 'create', 'main', '--name', 'rebuilt', '-c', 'track_commit_timestamp=on')
    await c.ok('pg', 'start', 'rebuilt')
    expect(await timestamps(await connstrOf('rebuilt'))).toBe(before)
  })
})
