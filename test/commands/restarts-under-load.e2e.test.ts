/**
 * Safekeeper restarts under load (Neon's test_restarts_under_load), through the built CLI with three
 * safekeeper processes: four clients move money between random accounts, one transfer per transaction,
 * while round after round one safekeeper goes away — SIGKILLed in even rounds, stopped cleanly with
 * `zenith safekeeper stop` in odd ones. While it is down every client must still commit within 4 s; it
 * is then started again and must catch up with the others before the next round; the sum of balances
 * never changes. At the end the three hold the same WAL byte for byte and the pageserver has all of it.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatLsn, type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import type { SkTimelineInfo } from '../../src/safekeeper/api-types.js'
import { type Cluster, newCluster, startMain, teardown } from '../harness/cli.js'
import { jsonRequest } from '../harness/http.js'
import { randomInt } from '../harness/random.js'
import { query } from '../harness/sql.js'
import { sleep, waitUntil } from '../harness/wait.js'

const ACCOUNTS = 100
const BALANCE = 1000
const CLIENTS = 4
const ROUNDS = 10
/** Every client commits within this long of a safekeeper going away. */
const COMMIT_WITHIN_MS = 4000
/** And the safekeeper stays away at least this long, so that the load runs on two of three. */
const DOWN_MS = 1000

describe('safekeeper restarts under load', () => {
  let c: Cluster
  let connstr: string
  let tlPath: string
  const pids = new Map<number, number>()

  const detail = async (id: number): Promise<SkTimelineInfo> => {
    const r = await jsonRequest(c.safekeeperHttp(id), 'GET', tlPath)
    expect(r.status).toBe(200)
    return r.json
  }
  const flush = async (id: number): Promise<Lsn> => parseLsn((await detail(id)).flush_lsn)
  const total = async () =>
    Number((await query<{ s: string }>(connstr, 'SELECT sum(balance) AS s FROM accounts'))[0].s)

  beforeAll(async () => {
    c = await newCluster('restarts', {}, ['--num-safekeepers', '3'])
    ;({ connstr, tlPath } = await startMain(c))
    for (const r of JSON.parse(await c.ok('safekeeper', 'list', '--json')) as { id: number; pid: number }[])
      pids.set(r.id, r.pid)
    await query(connstr, 'CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)')
    await query(connstr, `INSERT INTO accounts SELECT i, ${BALANCE} FROM generate_series(1, ${ACCOUNTS}) i`)
  })
  afterAll(() => teardown(c))

  it(`keeps every client committing through ${ROUNDS} rounds of a safekeeper killed or stopped, and loses no money`, async () => {
    const expected = ACCOUNTS * BALANCE
    expect(await total()).toBe(expected)
    const lastCommit = Array.from({ length: CLIENTS }, () => 0)
    const commits = Array.from({ length: CLIENTS }, () => 0)
    const failures: Error[] = []
    const rounds: string[] = []
    let running = true
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const client = new pg.Client({ connectionString: connstr })
        client.on('error', () => {})
        await client.connect()
        return client
      }),
    )
    const workers = clients.map(async (client, w) => {
      const rand = randomInt(1000 + w)
      try {
        while (running) {
          const a = 1 + rand(ACCOUNTS)
          const b = 1 + ((a + rand(ACCOUNTS - 1)) % ACCOUNTS)
          const amount = 1 + rand(50)
          // Rows locked in id order: two transfers over the same pair cannot deadlock.
          const [first, second] = a < b ? [a, b] : [b, a]
          const sign = a < b ? -1 : 1
          await client.query('BEGIN')
          await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [
            sign * amount,
            first,
          ])
          await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [
            sign * amount,
            second,
          ])
          await client.query('COMMIT')
          lastCommit[w] = Date.now()
          commits[w]++
        }
      } catch (err) {
        failures.push(err as Error)
      }
    })
    const stopWorkers = async () => {
      running = false
      await Promise.all(workers)
      await Promise.all(clients.map((cl) => cl.end().catch(() => {})))
    }

    try {
      await waitUntil('every client to commit', () => commits.every((n) => n > 0), 10_000)
      for (let round = 0; round < ROUNDS; round++) {
        const victim = 1 + (round % 3)
        const kill = round % 2 === 0
        if (kill) process.kill(pids.get(victim)!, 'SIGKILL')
        else await c.ok('safekeeper', 'stop', String(victim))
        const downAt = Date.now()
        const committedSince = () => lastCommit.every((t) => t > downAt)
        try {
          await waitUntil('every client to commit', committedSince, COMMIT_WITHIN_MS)
        } catch {
          const ago = lastCommit.map((t) => (t > downAt ? `${t - downAt} ms after` : 'not since'))
          throw new Error(
            `round ${round}: with safekeeper ${victim} ${kill ? 'killed' : 'stopped'}, not every client committed within ${COMMIT_WITHIN_MS} ms: ${ago.join(', ')}${failures.length ? `; ${failures[0].message}` : ''}`,
          )
        }
        expect(failures).toEqual([])
        const committedMs = Date.now() - downAt
        await sleep(Math.max(0, downAt + DOWN_MS - Date.now()))
        expect(await total()).toBe(expected)

        const startAt = Date.now()
        const [started] = JSON.parse(await c.ok('safekeeper', 'start', String(victim), '--json')) as {
          pid: number
        }[]
        pids.set(victim, started.pid)
        const others = [1, 2, 3].filter((id) => id !== victim)
        const startMs = Date.now() - startAt
        const target = Math.max(...(await Promise.all(others.map(flush))))
        await waitUntil(
          `safekeeper ${victim} to catch up to ${formatLsn(target)} in round ${round}`,
          async () => (await flush(victim)) >= target,
        )
        rounds.push(
          `round ${round}: sk${victim} ${kill ? 'killed' : 'stopped'}, every client committed within ${committedMs} ms; ` +
            `\`safekeeper start\` took ${startMs} ms, caught up ${Date.now() - startAt - startMs} ms later`,
        )
      }
    } finally {
      await stopWorkers()
    }
    expect(failures).toEqual([])
    console.log(`${rounds.join('\n')}\ncommits per client: ${commits.join(', ')}`)
    expect(await total()).toBe(expected)

    const [{ lsn }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn')
    const end = parseLsn(lsn)
    await waitUntil('all three to have the compute’s WAL', async () =>
      (await Promise.all([1, 2, 3].map(flush))).every((f) => f >= end),
    )
    const details = await Promise.all([1, 2, 3].map(detail))
    const from = Math.max(...details.map((d) => parseLsn(d.local_start_lsn)))
    const q = `?from_lsn=${formatLsn(from)}&until_lsn=${formatLsn(end)}`
    const digests = await Promise.all(
      [1, 2, 3].map((id) => jsonRequest(c.safekeeperHttp(id), 'GET', `${tlPath}/digest${q}`)),
    )
    expect(digests.map((d) => d.status)).toEqual([200, 200, 200])
    expect(new Set(digests.map((d) => d.json.sha256)).size).toBe(1)
    await waitUntil('the pageserver to have it all', async () => {
      const t = (await jsonRequest(`http://127.0.0.1:${c.http}`, 'GET', tlPath)).json
      return parseLsn(t.last_record_lsn) >= end
    })
  }, 300_000) // CLI runs dominate the time, and they crawl on a busy machine: a generous bound
})
