/**
 * Computes on a quorum of three safekeepers, through the built CLI: every `pg start` is an election, a
 * commit returns once two of three have it, a safekeeper can die under writes (the listings show it
 * unreachable and the others' commit LSN), each one's lag behind the compute is listed, and a compute
 * killed with its datadir lost comes back with every acknowledged commit — from the safekeepers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/control/process.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, freePortBase, newCluster, teardown } from '../harness/cli.js'
import { query } from '../harness/sql.js'
import { waitUntil } from '../harness/wait.js'

interface SkRow {
  id: number
  status: string
  pid: number | null
  timelines: { term: number; flush_lsn: string; commit_lsn: string; lag_bytes: number | null }[] | null
}

describe('computes on safekeepers', () => {
  let c: Cluster
  let connstr: string

  const list = async (): Promise<SkRow[]> => JSON.parse(await c.ok('safekeeper', 'list', '--json'))
  const count = async () => Number((await query<{ n: string }>(connstr, 'SELECT count(*) AS n FROM t'))[0].n)

  beforeAll(async () => {
    const pgBase = await freePortBase(6)
    c = await newCluster('on-sk', {}, [
      '--num-safekeepers',
      '3',
      '--safekeeper-pg-port-base',
      String(pgBase),
      '--safekeeper-http-port-base',
      String(pgBase + 3),
    ])
    await c.ok('start')
  })
  afterAll(() => teardown(c))

  it('starts a compute in term 1 whose commits the safekeepers acknowledge', async () => {
    const out = await c.ok('pg', 'start', 'main')
    expect(out).toMatch(/term 1: the timeline is new to the safekeepers/)
    expect(out).toMatch(/term 1: 3 of 3 safekeepers pull from it/)
    connstr = (JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[])[0].connstr
    const [{ synchronous_standby_names: names }] = await query<{ synchronous_standby_names: string }>(
      connstr,
      'SHOW synchronous_standby_names',
    )
    expect(names).toBe('ANY 2 (sk1, sk2, sk3)')
    await query(connstr, 'CREATE TABLE t (i int)')
    await query(connstr, 'INSERT INTO t SELECT generate_series(1, 1000)')
    const rows = await list()
    expect(rows.map((r) => r.timelines?.[0]?.term)).toEqual([1, 1, 1])
    // The compute is idle: each safekeeper gets all it flushed, and then has no lag behind it.
    const [{ flush }] = await query<{ flush: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS flush')
    await waitUntil('every safekeeper has all the compute flushed, with no lag left', async () =>
      (await list()).every((r) => {
        const t = r.timelines?.[0]
        return t !== undefined && parseLsn(t.flush_lsn) >= parseLsn(flush) && t.lag_bytes === 0
      }),
    )
    const standbys = await query<{ application_name: string; sync_state: string }>(
      connstr,
      'SELECT application_name, sync_state FROM pg_stat_replication ORDER BY application_name',
    )
    expect(standbys.filter((s) => s.sync_state === 'quorum').map((s) => s.application_name)).toEqual([
      'sk1',
      'sk2',
      'sk3',
    ])
  })

  it('keeps committing with one safekeeper killed, and the pageserver follows the others', async () => {
    const victim = (await list()).find((r) => r.id === 2)!
    process.kill(victim.pid!, 'SIGKILL')
    await waitUntil(`safekeeper 2 (pid ${victim.pid}) is gone`, () => !isAlive(victim.pid!))
    await query(connstr, 'INSERT INTO t SELECT generate_series(1001, 2000)')
    expect(await count()).toBe(2000)
    // The listings go on without it: the commit LSN is the other two's.
    const shown = JSON.parse(await c.ok('timeline', 'show', 'main', '--json')) as {
      commit_lsn: string
      safekeepers: { id: number; reachable: boolean; commit_lsn: string | null }[]
    }
    expect(shown.safekeepers.map((v) => [v.id, v.reachable])).toEqual([
      [1, true],
      [2, false],
      [3, true],
    ])
    const commits = shown.safekeepers.flatMap((v) => (v.commit_lsn ? [parseLsn(v.commit_lsn)] : []))
    expect(parseLsn(shown.commit_lsn)).toBe(Math.max(...commits))
    const [listed] = JSON.parse(await c.ok('pg', 'list', '--json')) as {
      commit_lsn: string | null
      safekeepers: { reachable: boolean }[]
    }[]
    expect(listed.commit_lsn).not.toBeNull()
    expect(listed.safekeepers.map((v) => v.reachable)).toEqual([true, false, true])
    const [{ lsn }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_insert_lsn() AS lsn')
    for (let i = 0; i < 200; i++) {
      const tl = JSON.parse(await c.ok('timeline', 'show', 'main', '--json')) as {
        last_record_lsn: string
        walreceiver_safekeeper: number
      }
      if (parseLsn(tl.last_record_lsn) >= parseLsn(lsn)) {
        expect(tl.walreceiver_safekeeper).not.toBe(2)
        break
      }
      if (i === 199)
        throw new Error(`the pageserver stayed at ${tl.last_record_lsn}, the compute is at ${lsn}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    await c.ok('safekeeper', 'start', '2')
    expect((await list()).map((r) => r.status)).toEqual(['running', 'running', 'running'])
  })

  it('brings back every acknowledged commit after the compute is killed and its datadir lost', async () => {
    await query(connstr, 'INSERT INTO t SELECT generate_series(2001, 3000)')
    // Killed, then destroyed: the datadir and its WAL are gone; only the safekeepers have the last commits.
    await c.ok('pg', 'stop', 'main', '--immediate', '--destroy')
    const out = await c.ok('pg', 'start', 'main')
    expect(out).toMatch(/term 2 on safekeepers [\d, ]+ at \d+\/[0-9A-F]+/)
    connstr = (JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[])[0].connstr
    expect(await count()).toBe(3000)
    await query(connstr, 'INSERT INTO t SELECT generate_series(3001, 3100)')
    expect(await count()).toBe(3100)
    expect((await list()).map((r) => r.timelines?.[0]?.term)).toEqual([2, 2, 2])
  })

  it('stops without waiting for the pageserver, and starts again in a new term', async () => {
    await c.ok('pg', 'stop', 'main', '--destroy')
    // No compute writes to the timeline: nothing to measure a lag against.
    expect((await list()).map((r) => r.timelines?.[0]?.lag_bytes)).toEqual([null, null, null])
    await c.ok('stop')
    await c.ok('start')
    const out = await c.ok('pg', 'start', 'main')
    expect(out).toMatch(/term 3 on safekeepers 1, 2, 3/)
    connstr = (JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[])[0].connstr
    expect(await count()).toBe(3100)
  })
})
