/**
 * The election keeps a commit acknowledged by safekeepers of which one is down at the next compute start:
 * sk3 misses term 2's election, sk1 and sk2 acknowledge a commit in term 2, then the compute and sk2 die
 * and sk3 returns, behind and in term 1 (so peer recovery cannot catch it up on its own). The voters sk1
 * and sk3 must start term 3 at sk1's WAL, the newest, with sk3 brought up to it from sk1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseLsn } from '../../src/postgres/lsn.js'
import type { SkTimelineInfo } from '../../src/safekeeper/api-types.js'
import { type Cluster, newCluster, startMain, teardown } from '../harness/cli.js'
import { jsonRequest } from '../harness/http.js'
import { query } from '../harness/sql.js'
import { sleep } from '../harness/wait.js'

describe('the election at pg start', () => {
  let c: Cluster
  let connstr: string
  let tlPath: string

  const detail = async (id: number): Promise<SkTimelineInfo> =>
    (await jsonRequest(c.safekeeperHttp(id), 'GET', tlPath)).json
  const count = async () => Number((await query<{ n: string }>(connstr, 'SELECT count(*) AS n FROM t'))[0].n)

  beforeAll(async () => {
    c = await newCluster('elect', {}, ['--num-safekeepers', '3'])
    ;({ connstr, tlPath } = await startMain(c))
  })
  afterAll(() => teardown(c))

  it('starts at the newest WAL of the voters and brings the one behind up to it', async () => {
    await query(connstr, 'CREATE TABLE t (i int)')
    await c.ok('safekeeper', 'stop', '3', '--immediate')
    await c.ok('pg', 'stop', 'main')
    expect(await c.ok('pg', 'start', 'main')).toMatch(/term 2 on safekeepers 1, 2 at /)
    // Acknowledged by sk1 and sk2 only.
    await query(connstr, 'INSERT INTO t SELECT generate_series(1, 1000)')
    const acknowledged = parseLsn(
      (await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn'))[0].lsn,
    )
    await c.ok('pg', 'stop', 'main', '--immediate')
    await c.ok('safekeeper', 'stop', '2', '--immediate')
    await c.ok('safekeeper', 'start', '3')
    await sleep(1000)
    const stale = await detail(3)
    expect(stale.acceptor_state.term).toBe(1)
    expect(parseLsn(stale.flush_lsn)).toBeLessThan(acknowledged)

    const out = await c.ok('pg', 'start', 'main')
    const m = /term 3 on safekeepers 1, 3 at (\d+\/[0-9A-F]+)/.exec(out)
    expect(m, out).not.toBeNull()
    expect(parseLsn(m![1])).toBeGreaterThanOrEqual(acknowledged)
    expect(await count()).toBe(1000)
    // sk3 fetched what it lacked from sk1, and both are in term 3 at its start or beyond.
    const [d1, d3] = await Promise.all([detail(1), detail(3)])
    for (const d of [d1, d3]) {
      expect(d.acceptor_state.term).toBe(3)
      expect(parseLsn(d.flush_lsn)).toBeGreaterThanOrEqual(parseLsn(m![1]))
    }
    // The new term commits with sk1 and sk3 alone.
    await query(connstr, 'INSERT INTO t SELECT generate_series(1001, 1100)')
    expect(await count()).toBe(1100)
  })
})
