/**
 * WAL truncation at the divergence point (Neon's test_wal_truncation), through the built CLI with three
 * safekeeper processes: a tail that only sk1 got while the other two were down, a compute killed before
 * anyone acknowledged it, an election without sk1 that commits new WAL over the same LSNs, and sk1 back
 * again — it takes nothing from the newer term's compute while it is still in its old term, and once the
 * next election makes it a member of the term its tail is cut where the terms diverge and its WAL is its
 * peers' byte for byte.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatLsn, type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import type { SkDigest, SkTimelineInfo } from '../../src/safekeeper/api-types.js'
import { type Cluster, newCluster, startMain, teardown } from '../harness/cli.js'
import { jsonRequest } from '../harness/http.js'
import { query } from '../harness/sql.js'
import { sleep, waitUntil } from '../harness/wait.js'

describe('WAL truncation at the divergence point', () => {
  let c: Cluster
  let connstr: string
  let tlPath: string
  /** What sk1 alone holds after the compute of term 1 is killed: its flush LSN and the digest up to it. */
  let divergentEnd: Lsn
  /** Where term 2 starts: the end of what sk2 and sk3 hold of term 1. */
  let term2Start: Lsn
  /** sk1's WAL from where the divergent INSERT began (at or above term 2's start) to its end. */
  let tail: SkDigest
  /** sk1's WAL from term 2's start to its end, as it held it in term 1. */
  let divergent: SkDigest

  const api = (id: number) => c.safekeeperHttp(id)
  const detail = async (id: number): Promise<SkTimelineInfo> => {
    const r = await jsonRequest(api(id), 'GET', tlPath)
    expect(r.status).toBe(200)
    return r.json
  }
  const flush = async (id: number) => parseLsn((await detail(id)).flush_lsn)
  const digest = async (id: number, from: Lsn, until: Lsn): Promise<SkDigest> => {
    const r = await jsonRequest(
      api(id),
      'GET',
      `${tlPath}/digest?from_lsn=${formatLsn(from)}&until_lsn=${formatLsn(until)}`,
    )
    expect({ status: r.status, msg: r.json.msg }).toEqual({ status: 200, msg: undefined })
    return r.json
  }
  const computeFlush = async () =>
    parseLsn((await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn'))[0].lsn)
  const rows = async (note: string) =>
    Number((await query<{ n: string }>(connstr, 'SELECT count(*) AS n FROM t WHERE note = $1', [note]))[0].n)
  const waitForFlush = (ids: number[], lsn: Lsn) =>
    waitUntil(`safekeepers ${ids.join(', ')} to flush ${formatLsn(lsn)}`, async () =>
      (await Promise.all(ids.map(flush))).every((f) => f >= lsn),
    )
  const skLog = (id: number) =>
    readFileSync(path.join(c.repo, 'safekeepers', `sk${id}`, 'safekeeper.log'), 'utf8')
  const startOf = (out: string, term: number): Lsn => {
    const m = new RegExp(`term ${term} on safekeepers [\\d, ]+ at (\\d+/[0-9A-F]+)`).exec(out)
    if (!m) throw new Error(`pg start did not elect term ${term}:\n${out}`)
    return parseLsn(m[1])
  }

  beforeAll(async () => {
    c = await newCluster('trunc', {}, ['--num-safekeepers', '3'])
    ;({ connstr, tlPath } = await startMain(c))
  })
  afterAll(() => teardown(c))

  it('leaves a tail of term 1 that only sk1 has when the compute is killed unacknowledged', async () => {
    await query(connstr, 'CREATE TABLE t (i int, note text)')
    // Few rows: with wal_consistency_checking every one is a page image, and the WAL of the whole test
    // stays in one segment, which WAL removal keeps.
    await query(connstr, "INSERT INTO t SELECT i, 'term 1' FROM generate_series(1, 100) i")
    await waitForFlush([1, 2, 3], await computeFlush())
    await c.ok('safekeeper', 'stop', '2')
    await c.ok('safekeeper', 'stop', '3')

    const before = await flush(1)
    let returned = false
    const unacknowledged = query(
      connstr,
      "INSERT INTO t SELECT i, 'divergent' FROM generate_series(1, 200) i",
    )
      .then(() => {
        returned = true
      })
      .catch((e: Error) => e)
    // The commit record is flushed and sk1 gets it, but with one of three it is never acknowledged.
    await waitUntil('the commit to wait for the quorum', async () => {
      const [{ n }] = await query<{ n: string }>(
        connstr,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
      )
      return n === '1'
    })
    const written = await computeFlush()
    expect(written).toBeGreaterThan(before + 100_000)
    await waitForFlush([1], written)
    await sleep(300)
    expect(returned).toBe(false)
    await c.ok('pg', 'stop', 'main', '--immediate')
    expect(await unacknowledged).toBeInstanceOf(Error)
    expect(returned).toBe(false)
    divergentEnd = await flush(1)
    expect(divergentEnd).toBeGreaterThanOrEqual(written)
    expect((await detail(1)).acceptor_state.term).toBe(1)
    // sk2 and sk3 stopped at or below `before`: from there on the WAL is sk1's alone.
    tail = await digest(1, before, divergentEnd)
  })

  it('elects term 2 without sk1 and commits new WAL over the same LSNs', async () => {
    await c.ok('safekeeper', 'stop', '1')
    await c.ok('safekeeper', 'start', '2')
    await c.ok('safekeeper', 'start', '3')
    const out = await c.ok('pg', 'start', 'main')
    term2Start = startOf(out, 2)
    expect(out).toMatch(/term 2 on safekeepers 2, 3 at /)
    expect(term2Start).toBeLessThanOrEqual(parseLsn(tail.from_lsn))
    // Nothing of the tail no majority had: the new compute started below it.
    expect(await rows('divergent')).toBe(0)
    expect(await rows('term 1')).toBe(100)
    while ((await computeFlush()) < divergentEnd + 100_000)
      await query(connstr, "INSERT INTO t SELECT i, 'term 2' FROM generate_series(1, 200) i")
    await waitForFlush([2, 3], await computeFlush())
    for (const id of [2, 3]) {
      expect((await detail(id)).acceptor_state.term_history.map((e) => e.term)).toEqual([1, 2])
    }
  })

  it('takes no WAL from the compute of term 2 while sk1 is still in term 1', async () => {
    const logFrom = skLog(1).length
    await c.ok('safekeeper', 'start', '1')
    // The compute of term 2 listens where term 1's did: sk1's control file still names that address.
    await sleep(3000)
    const d = await detail(1)
    expect(d.acceptor_state.term).toBe(1)
    expect(parseLsn(d.flush_lsn)).toBe(divergentEnd)
    expect(await digest(1, parseLsn(tail.from_lsn), divergentEnd)).toEqual(tail)
    divergent = await digest(1, term2Start, divergentEnd)
    expect(skLog(1).slice(logFrom)).not.toMatch(/WAL acceptor streaming/)
    expect(d.walreceivers[0]?.last_error ?? '').toMatch(/term 2/)
  })

  it('cuts sk1 at the divergence point in the next election, and its WAL is then its peers’ byte for byte', async () => {
    await c.ok('pg', 'stop', 'main')
    const out = await c.ok('pg', 'start', 'main')
    const term3Start = startOf(out, 3)
    expect(out).toMatch(/term 3 on safekeepers 1, 2, 3 at /)
    await query(connstr, "INSERT INTO t SELECT i, 'term 3' FROM generate_series(1, 100) i")
    const end = await computeFlush()
    await waitForFlush([1, 2, 3], end)

    const [d1, d2, d3] = await Promise.all([1, 2, 3].map(detail))
    const history = [
      { term: 1, lsn: d1.timeline_start_lsn },
      { term: 2, lsn: formatLsn(term2Start) },
      { term: 3, lsn: formatLsn(term3Start) },
    ]
    for (const d of [d1, d2, d3])
      expect(d.acceptor_state).toEqual({ term: 3, epoch: 3, term_history: history })
    expect(skLog(1)).toMatch(
      new RegExp(`WAL truncated at the divergence point .*lsn=${formatLsn(term2Start)} term=3 `),
    )

    const from = Math.max(...[d1, d2, d3].map((d) => parseLsn(d.local_start_lsn)))
    const all = await Promise.all([1, 2, 3].map((id) => digest(id, from, end)))
    expect(new Set(all.map((x) => x.sha256)).size).toBe(1)
    // Over the LSNs of the divergent tail sk1 now holds term 2's WAL, as its peers do.
    expect(from).toBeLessThanOrEqual(term2Start)
    const over = await digest(1, term2Start, divergentEnd)
    expect(over.sha256).not.toBe(divergent.sha256)
    expect(over).toEqual(await digest(2, term2Start, divergentEnd))

    expect(await rows('divergent')).toBe(0)
    expect([await rows('term 1'), await rows('term 3')]).toEqual([100, 100])
  })
})
