/**
 * Lag everywhere, as a user sees it: `timeline show --json` and `pg list` draw the LSN ladder of a branch
 * — compute insert and flush, the safekeeper's flush, commit_lsn, the pageserver's last record, disk and
 * remote consistent LSNs — with its lag in bytes and seconds, on one cluster with one safekeeper and a
 * compute writing. The seconds are checked against the test's own clock: a pageserver stopped with
 * SIGSTOP for a few seconds must say that disk_consistent_lsn is at least that much behind when it
 * resumes, and no more than it could be.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LadderRung } from '../../src/control/lsn-ladder.js'
import type { TimelineInfo } from '../../src/pageserver/api-types.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { jsonRequest } from '../harness/http.js'
import { queryText } from '../harness/sql.js'
import { sleep, waitFor, waitUntil } from '../harness/wait.js'
import { AckWriters } from '../harness/writers.js'

const STOP_MS = 3000

describe('lag in bytes and seconds', () => {
  let c: Cluster | undefined
  let main: MainEndpoint
  let writers: AckWriters | undefined

  const ladder = async (): Promise<LadderRung[]> =>
    JSON.parse(await c!.ok('timeline', 'show', 'main', '--json')).ladder
  const rung = (l: readonly LadderRung[], name: LadderRung['name']) => l.find((r) => r.name === name)!
  const psTimeline = async (): Promise<TimelineInfo> =>
    (await jsonRequest(`http://127.0.0.1:${c!.http}`, 'GET', main.tlPath)).json

  beforeAll(async () => {
    c = await newCluster('lag', {}, ['--num-safekeepers', '1'])
    main = await startMain(c)
    await queryText(main.connstr, 'CREATE TABLE t (writer int, seq int, pad text)')
    writers = new AckWriters(main.connstr, 2, "INSERT INTO t VALUES ($1, $2, repeat('x', 500))")
    writers.start()
    await waitUntil('the writers to commit', () => writers!.total() > 100)
  }, 60_000)

  afterAll(async () => {
    await writers?.stop()
    await teardown(c)
  }, 30_000)

  it('shows every rung of the ladder while a compute writes, with lag_bytes ≥ 0 and lag_seconds', async () => {
    const l = await ladder()
    expect(l.map((r) => r.name)).toEqual([
      'compute_insert',
      'compute_flush',
      'safekeeper_flush',
      'commit',
      'last_record',
      'disk_consistent',
      'remote_consistent',
      'gc_cutoff',
    ])
    expect(rung(l, 'safekeeper_flush').safekeeper_id).toBe(1)
    for (const r of l) {
      expect(r.lsn, r.name).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      // The compute's insert LSN is ahead of the top of the ladder, and the GC cutoff is not a lag.
      if (r.name === 'compute_insert' || r.name === 'gc_cutoff') expect(r.lag_bytes, r.name).toBeNull()
      else expect(r.lag_bytes, r.name).toBeGreaterThanOrEqual(0)
      if (r.name === 'gc_cutoff') expect(r.lag_seconds).toBeNull()
      else expect(r.lag_seconds, r.name).toBeGreaterThanOrEqual(0)
    }
    // The ladder descends: no step holds WAL the one above it does not.
    const lsns = l.filter((r) => r.name !== 'gc_cutoff').map((r) => parseLsn(r.lsn!))
    for (let i = 1; i < lsns.length; i++) expect(lsns[i], l[i].name).toBeLessThanOrEqual(lsns[i - 1])
  })

  it('says a pageserver stopped for 3 s is that far behind at disk_consistent_lsn when it resumes, and no more', async () => {
    const { pid } = JSON.parse(await c!.ok('pageserver', 'status', '--json'))
    const askedA = Date.now()
    const a = await psTimeline()
    const answeredA = Date.now()
    expect(a.walreceiver_status).toBe('streaming')
    let answer: Promise<TimelineInfo> | undefined
    process.kill(pid, 'SIGSTOP')
    let resumedAt: number
    try {
      await sleep(STOP_MS / 2)
      // Asked while it is stopped, answered as soon as it runs again: before it has caught up.
      answer = psTimeline()
      await sleep(STOP_MS / 2)
    } finally {
      resumedAt = Date.now()
      process.kill(pid, 'SIGCONT')
    }
    const b = await answer
    const answeredB = Date.now()
    // The writers went on meanwhile (the safekeeper holds their commits), and the pageserver had not
    // checkpointed past where the source was when it stopped: the source passed disk_consistent_lsn at
    // least the stop ago. It may have been further behind, but no further than before plus the time since.
    expect(parseLsn(b.disk_consistent_lsn)).toBeLessThanOrEqual(parseLsn(a.wal_source_end_lsn!))
    const [lagA, lagB] = [a.lag_seconds!.disk_consistent!, b.lag_seconds!.disk_consistent!]
    expect(lagB).toBeGreaterThanOrEqual((resumedAt - answeredA) / 1000 - 0.01)
    expect(lagB).toBeLessThanOrEqual(lagA + (answeredB - askedA) / 1000 + 0.5)
    expect(b.lag_seconds!.remote_consistent).toBe(lagB)
    expect(b.lag_seconds!.last_record).toBeLessThanOrEqual(lagB)
  })

  it('catches up once the writes stop: no bytes and no seconds behind on any rung', async () => {
    await writers!.stop()
    const l = await waitFor('every rung to catch up', async () => {
      // With safekeepers the pageserver flushes at checkpoint_distance or checkpoint_timeout, not when
      // idle: a checkpoint makes disk_consistent_lsn catch up (again, if the idle compute logged more).
      await c!.ok('timeline', 'checkpoint', 'main')
      const x = await ladder()
      const behind = x.filter((r) => r.name !== 'compute_insert' && r.name !== 'gc_cutoff')
      return behind.every((r) => r.lag_bytes === 0 && r.lag_seconds === 0) ? x : undefined
    })
    expect(rung(l, 'last_record').lsn).toBe(rung(l, 'compute_flush').lsn)
    const text = await c!.ok('timeline', 'show', 'main')
    expect(text).toMatch(/^compute flush +[0-9A-F]+\/[0-9A-F]+$/m)
    expect(text).toMatch(/^safekeeper 1 flush +[0-9A-F]+\/[0-9A-F]+ +caught up$/m)
    expect(text).toMatch(/^last_record_lsn +[0-9A-F]+\/[0-9A-F]+ +caught up$/m)
  })

  it('pg list shows the ladder of the running endpoint, and a compact LAG column', async () => {
    const [ep] = JSON.parse(await c!.ok('pg', 'list', '--json'))
    expect(ep.name).toBe('main')
    expect(ep.ladder.map((r: LadderRung) => r.name)).toContain('compute_flush')
    expect(rung(ep.ladder, 'compute_flush').lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    expect(rung(ep.ladder, 'last_record').lag_bytes).toBe(0)
    const lines = (await c!.ok('pg', 'list')).split('\n')
    const at = lines[0].indexOf('LAG')
    expect(at).toBeGreaterThan(0)
    expect(lines[1].slice(at)).toMatch(/^sk 0 B\/0\.0 s, ps 0 B\/0\.0 s +/)
  })
})
