/**
 * WAL the pageserver cannot ingest is loud, not a hang: a compute whose wal_consistency_checking is cut
 * down at run time (ALTER SYSTEM, past pg start's check) writes btree records without page images, which
 * ingest refuses. The pageserver stops its WAL receiver and logs why once, at error level; `pg list` and
 * `status` say that the branch's WAL is not being ingested and why; `pg stop` stops the compute within
 * its timeout and names the reason; `pg start` fails at once with it.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { query } from '../harness/sql.js'
import { waitUntil } from '../harness/wait.js'

describe('a record ingest refuses', () => {
  let c: Cluster
  let connstr: string

  beforeAll(async () => {
    c = await newCluster('refused', {}, ['--num-safekeepers', '0'])
    await c.ok('start')
    await c.ok('pg', 'start', 'main')
    connstr = (JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[])[0].connstr
  })
  afterAll(() => teardown(c))

  const reason = /record at \d+\/[0-9A-F]+ \(Btree\/[A-Z_]+\) has block reference \d+ without a page image/

  it('stops the WAL receiver, logs it once, and pg list and status say why', async () => {
    await query(connstr, 'CREATE TABLE t (i int PRIMARY KEY)')
    await query(connstr, "ALTER SYSTEM SET wal_consistency_checking = 'heap'")
    await query(connstr, 'SELECT pg_reload_conf()')
    // The commit waits for the pageserver, its synchronous standby, which never gets there.
    void query(connstr, 'INSERT INTO t SELECT generate_series(1, 100)').catch(() => undefined)
    await waitUntil('the WAL receiver to stop', async () => {
      const [e] = JSON.parse(await c.ok('pg', 'list', '--json')) as {
        walreceiver: { status: string } | null
      }[]
      return e.walreceiver?.status === 'broken'
    })
    const [e] = JSON.parse(await c.ok('pg', 'list', '--json')) as { walreceiver: { error: string } }[]
    expect(e.walreceiver.error).toMatch(reason)
    const list = await c.ok('pg', 'list')
    expect(list).toMatch(
      /endpoint main: the WAL of branch main is not being ingested: record at .* without a page image/,
    )
    expect(await c.ok('status')).toMatch(/the WAL of branch main is not being ingested: /)
    const log = readFileSync(path.join(c.repo, 'pageserver', 'pageserver.log'), 'utf8')
    const stops = log.split('\n').filter((l) => l.includes('WAL receiver stopped: ingest refused a record'))
    expect(stops).toHaveLength(1)
    expect(stops[0]).toMatch(/ERROR/i)
  })

  it('pg stop stops the compute at once and names the reason; pg start refuses with it', async () => {
    const t0 = Date.now()
    const stop = await c.zenith('pg', 'stop', 'main')
    expect(Date.now() - t0).toBeLessThan(30_000)
    expect(stop.exitCode).toBe(1)
    expect(stop.stderr).toMatch(
      /stopped endpoint main, but the pageserver is not ingesting the WAL of branch main: record at /,
    )
    expect(stop.stderr).toMatch(/kept in the endpoint's datadir/)
    const [row] = JSON.parse(await c.ok('pg', 'list', '--json')) as { status: string }[]
    expect(row.status).toBe('stopped')
    const start = await c.zenith('pg', 'start', 'main')
    expect(start.exitCode).toBe(1)
    expect(start.stderr).toMatch(reason)
  })
})
