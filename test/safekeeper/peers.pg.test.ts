/**
 * Three safekeepers as the quorum of a stock Postgres compute (`ANY 2 (sk1, sk2, sk3)`), learning
 * commit_lsn from each other: it follows the compute while two of three are up, never runs ahead of what
 * a majority has on disk, ignores a peer of another term, and catches up on a safekeeper that comes back.
 * With pageserver feedback, WAL below what everyone has is removed from the safekeeper that got it.
 */
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  formatLsn,
  type Lsn,
  parseLsn,
  segmentNumber,
  segmentStart,
  walFileName,
} from '../../src/postgres/lsn.js'
import { PgClient } from '../../src/protocol/client.js'
import { encodeStandbyStatusUpdate } from '../../src/protocol/replication.js'
import { readControlFile, SK_CONTROL_FILE_NAME } from '../../src/safekeeper/control-file.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'
import {
  commit as commitOn,
  computeFlush as computeFlushOf,
  SafekeeperSet,
  type SkNode,
} from '../harness/safekeepers.js'
import { sleep, waitFor } from '../harness/wait.js'

const TENANT = 'c3'.repeat(16)
const TIMELINE = 'd4'.repeat(16)
/** Small segments, so that removal has several to work on without writing 16 MiB of WAL for each. */
const SEG = 1024 * 1024

let sks: SafekeeperSet
let nodes: SkNode[]
let pg: PgCluster
let startLsn: Lsn

const start = (n: SkNode) => sks.start(n)
const stop = (n: SkNode) => sks.stop(n)
const http = (n: SkNode, method: string, p: string, body?: unknown) => sks.http(n, method, p, body)
const detail = (n: SkNode) => sks.detail(n)
const lsns = (n: SkNode) => sks.lsns(n)
const setCompute = (n: SkNode, connstr: string, term: number) => sks.setCompute(n, connstr, term)
const computeFlush = () => computeFlushOf(pg)
const commit = (sql: string | string[], ms?: number) => commitOn(pg, sql, ms)

async function waitForCommit(ns: SkNode[], lsn: Lsn, ms = 20_000): Promise<void> {
  await waitFor(
    `commit_lsn ${formatLsn(lsn)} on sk${ns.map((n) => n.config.id).join(', sk')}`,
    async () => ((await Promise.all(ns.map(lsns))).every((l) => l.commit >= lsn) ? true : undefined),
    ms,
  )
}

const tlDir = (n: SkNode) => path.join(n.dir, TENANT, TIMELINE)
const segments = (n: SkNode) =>
  readdirSync(tlDir(n))
    .filter((f) => /^[0-9A-F]{24}$/.test(f))
    .sort()

beforeAll(async () => {
  sks = await SafekeeperSet.create(3, { tenant: TENANT, timeline: TIMELINE })
  nodes = sks.nodes
  pg = await startPostgres({
    name: 'sk-peers-compute',
    initdbArgs: [`--wal-segsize=${SEG / 1024 / 1024}`],
    settings: {
      wal_level: 'replica',
      max_wal_senders: 10,
      synchronous_commit: 'on',
      // The compute keeps every segment: a safekeeper that was down catches up from it.
      wal_keep_size: '1GB',
      min_wal_size: '64MB',
    },
  })
  await sks.startAll()
})

afterAll(async () => {
  await sks?.destroy()
  await pg?.destroy()
  // Peers going away are warnings; an error entry would be a bug.
  expect(sks.logged.filter((l) => l.level === 'error')).toEqual([])
})

describe('three safekeepers', () => {
  it('become the quorum of the compute of term 1', async () => {
    await pg.sql('CHECKPOINT')
    startLsn = parseLsn(await pg.sql('SELECT pg_current_wal_insert_lsn()'))
    const systemId = await pg.sql('SELECT system_identifier FROM pg_control_system()')
    for (const n of nodes) {
      const created = await http(n, 'POST', '/v1/tenant/timeline', {
        tenant_id: TENANT,
        timeline_id: TIMELINE,
        system_id: systemId,
        start_lsn: formatLsn(startLsn),
        wal_seg_size: SEG,
      })
      expect(created.status).toBe(201)
      await setCompute(n, pg.connectionString(), 1)
    }
    await pg.sql([
      "ALTER SYSTEM SET synchronous_standby_names = 'ANY 2 (sk1, sk2, sk3)'",
      'SELECT pg_reload_conf()',
    ])
    await waitFor('sk1..3 to be quorum standbys', async () =>
      (await pg.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'")) === '3'
        ? true
        : undefined,
    )
  })

  it('learn commit_lsn from each other within a second, never above what a majority has flushed', async () => {
    await commit("CREATE TABLE t AS SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 5000) i")
    const flushed = await computeFlush()
    await waitForCommit(nodes, flushed, 1500)

    let writing = true
    const load = (async () => {
      for (let i = 0; writing; i++) await commit(`INSERT INTO t VALUES (${i}, 'load')`)
    })()
    try {
      for (let sample = 0; sample < 20; sample++) {
        // Commits first, flushes after: flushes only grow, so a commit above them is a real violation.
        const commits = (await Promise.all(nodes.map(lsns))).map((l) => l.commit)
        const flushes = (await Promise.all(nodes.map(lsns))).map((l) => l.flush).sort((a, b) => b - a)
        for (const c of commits) expect(c).toBeLessThanOrEqual(flushes[1])
        await sleep(20)
      }
    } finally {
      writing = false
      await load
    }
    const d = await detail(nodes[0])
    expect(
      d.peers.map((p) => ({ addr: p.addr, term: p.term })).sort((a, b) => a.addr.localeCompare(b.addr)),
    ).toEqual(
      nodes
        .slice(1)
        .map((n) => ({ addr: `127.0.0.1:${n.config.listenHttpAddr.port}`, term: 1 }))
        .sort((a, b) => a.addr.localeCompare(b.addr)),
    )
    for (const p of d.peers) expect(p.last_seen_ms_ago).toBeLessThan(1000)
  })

  it('keep committing with one of three down, and catch it up when it is back', async () => {
    const [sk1, sk2, sk3] = nodes
    const logFrom = sks.logged.length
    await stop(sk3)
    await commit("INSERT INTO t VALUES (-1, 'sk3 down')")
    const flushed = await computeFlush()
    await waitForCommit([sk1, sk2], flushed, 1500)
    // sk3 stopped answering, and what it said last is forgotten.
    await waitFor('sk1 to forget sk3', async () =>
      (await detail(sk1)).peers.length === 1 ? true : undefined,
    )

    await start(sk3)
    await waitForCommit([sk3], flushed)
    const after = await lsns(sk3)
    expect(after.flush).toBeGreaterThanOrEqual(flushed)
    // One line when sk3 went away and one when it came back, however many polls failed in between.
    const sk3Addr = `127.0.0.1:${sk3.config.listenHttpAddr.port}`
    await waitFor('sk1 to hear from sk3 again', async () =>
      (await detail(sk1)).peers.some((p) => p.addr === sk3Addr) ? true : undefined,
    )
    const aboutSk3 = sks.logged
      .slice(logFrom)
      .filter((l) => l.id === sk1.config.id && l.fields?.peer === sk3Addr)
      .map((l) => `${l.level} ${l.msg}`)
    expect(aboutSk3).toEqual(['warn peer does not answer', 'info peer answers again'])
  })

  it('do not move commit_lsn past what a majority has while only one runs', async () => {
    const [sk1, sk2, sk3] = nodes
    await stop(sk2)
    await stop(sk3)
    const majorityHad = await computeFlush()
    let done = false
    const insert = pg.sql("INSERT INTO t VALUES (-2, 'one of three')").then(() => {
      done = true
    })
    insert.catch(() => {})
    // The compute writes the commit record and sk1 gets it, but no majority has it.
    const written = await waitFor('the blocked commit to be flushed', async () => {
      const f = await computeFlush()
      return f > majorityHad ? f : undefined
    })
    await waitFor('sk1 to have the blocked commit', async () =>
      (await lsns(sk1)).flush >= written ? true : undefined,
    )
    await sleep(500)
    expect(done).toBe(false)
    const alone = await lsns(sk1)
    expect(alone.commit).toBeLessThanOrEqual(majorityHad)
    expect(alone.d.peers).toEqual([])

    await start(sk2)
    await insert
    await waitForCommit([sk1, sk2], written)
    await start(sk3)
    await waitForCommit([sk3], written)
  })

  it('do not count a peer of another term', async () => {
    const [sk1, sk2, sk3] = nodes
    // sk1 falls behind; sk2 and sk3 commit more, then move to term 2 and stop pulling from the compute.
    await stop(sk1)
    await commit("INSERT INTO t SELECT i, 'without sk1' FROM generate_series(1, 200) i")
    const flushed = await computeFlush()
    await waitForCommit([sk2, sk3], flushed)
    const nowhere = 'postgresql://postgres@127.0.0.1:1/postgres'
    await setCompute(sk2, nowhere, 2)
    await setCompute(sk3, nowhere, 2)
    const theirs = await Promise.all([sk2, sk3].map(lsns))
    const theirFlush = Math.min(...theirs.map((l) => l.flush))

    // sk1, still in term 1, catches up from the compute; by flush LSNs alone sk2 and sk3 would vouch for it.
    await start(sk1)
    await waitFor('sk1 to catch up', async () => ((await lsns(sk1)).flush >= theirFlush ? true : undefined))
    await waitFor('sk1 to hear from both peers', async () =>
      (await detail(sk1)).peers.filter((p) => p.term === 2).length === 2 ? true : undefined,
    )
    await sleep(300)
    expect((await lsns(sk1)).commit).toBeLessThan(theirFlush)

    // Term 3 brings all three back to the compute, and commit_lsn moves on everywhere.
    for (const n of nodes) await setCompute(n, pg.connectionString(), 3)
    // sk1's commit_lsn reaching the start of term 3 is on disk at once, not a second later.
    const termStart = parseLsn((await detail(sk1)).acceptor_state.term_history.at(-1)!.lsn)
    await waitFor('sk1 to commit the start of term 3', async () =>
      (await lsns(sk1)).commit >= termStart ? true : undefined,
    )
    expect(readControlFile(path.join(tlDir(sk1), SK_CONTROL_FILE_NAME)).commitLsn).toBeGreaterThanOrEqual(
      termStart,
    )
    await commit("INSERT INTO t VALUES (-3, 'term 3')")
    await waitForCommit(nodes, await computeFlush())
  })

  it('remove WAL below what the pageserver has in remote storage and every peer has, once the pageserver reports', async () => {
    const [sk1, , sk3] = nodes
    for (let i = 0; i < 4; i++)
      await commit([`INSERT INTO t VALUES (${100 + i}, 'segment')`, 'SELECT pg_switch_wal()'])
    // And some WAL in the segment after the last switch, so that the horizon's segment is on disk.
    await commit("INSERT INTO t VALUES (200, 'after the switches')")
    const horizon = await computeFlush()
    await waitForCommit(nodes, horizon)
    const keepFrom = segmentNumber(horizon, SEG)
    const below = segments(sk1).filter((f) => f < walFileName(1, keepFrom, SEG))
    expect(below.length).toBeGreaterThanOrEqual(3)
    const before = await detail(sk1)

    const client = await PgClient.connect({
      ...sk1.config.listenPgAddr,
      user: 'postgres',
      params: {
        replication: 'true',
        application_name: 'pageserver',
        options: `-c tenant_id=${TENANT} -c timeline_id=${TIMELINE}`,
      },
    })
    try {
      const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${before.commit_lsn}`)
      // With sk3 down nobody knows what it still needs: nothing goes.
      await stop(sk3)
      await waitFor('sk1 to forget sk3', async () =>
        (await detail(sk1)).peers.length === 1 ? true : undefined,
      )
      stream.send(encodeStandbyStatusUpdate({ write: horizon, flush: horizon, apply: startLsn }))
      await waitFor('the feedback to arrive', async () =>
        (await detail(sk1)).pageserver_feedback?.disk_consistent_lsn === formatLsn(horizon)
          ? true
          : undefined,
      )
      await sleep(300)
      expect(segments(sk1)).toEqual(expect.arrayContaining(below))
      expect((await detail(sk1)).local_start_lsn).toBe(before.local_start_lsn)

      await start(sk3)
      await waitFor('sk1 to hear sk3 again', async () =>
        (await detail(sk1)).peers.length === 2 ? true : undefined,
      )
      // disk_consistent_lsn is not enough: WAL goes only once it is in remote storage (apply).
      await sleep(300)
      expect(segments(sk1)).toEqual(expect.arrayContaining(below))
      stream.send(encodeStandbyStatusUpdate({ write: horizon, flush: horizon, apply: horizon }))
      const moved = await waitFor('sk1 to remove WAL', async () => {
        const d = await detail(sk1)
        return d.local_start_lsn !== before.local_start_lsn ? d : undefined
      })
      expect(moved.local_start_lsn).toBe(formatLsn(segmentStart(keepFrom, SEG)))
      for (const f of below) expect(existsSync(path.join(tlDir(sk1), f))).toBe(false)
      expect(segments(sk1)[0]).toBe(walFileName(1, keepFrom, SEG))
      // The others hear the pageserver's feedback from sk1, the one it reads from, and remove the same.
      for (const n of nodes.slice(1)) {
        await waitFor(`safekeeper ${n.config.id} to remove WAL`, async () =>
          (await detail(n)).local_start_lsn === moved.local_start_lsn ? true : undefined,
        )
        for (const f of below) expect(existsSync(path.join(tlDir(n), f))).toBe(false)
      }
    } finally {
      await client.close()
    }
    // The removal is on disk: a restarted sk1 does not offer the WAL that is gone.
    await stop(sk1)
    await start(sk1)
    expect((await detail(sk1)).local_start_lsn).toBe(formatLsn(segmentStart(keepFrom, SEG)))
  })
})
