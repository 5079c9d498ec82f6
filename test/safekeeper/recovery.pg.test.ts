/**
 * Peer recovery on a real compute: three safekeepers as the quorum of `ANY 2 (sk1, sk2, sk3)`, a compute
 * that keeps no WAL for anyone (`wal_keep_size = 0`, a small `max_wal_size`), and a safekeeper that was
 * down while segments went by. It gets the WAL it lacks from a peer of its term, byte for byte; a peer of
 * another term is no donor; a peer's walsender serves a recovery only in the term it names.
 */
import { readdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatLsn, type Lsn, parseLsn, segmentNumber, walFileName } from '../../src/postgres/lsn.js'
import { PgClient } from '../../src/protocol/client.js'
import { PgServerError } from '../../src/protocol/errors.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'
import { commit, computeFlush, SafekeeperSet, type SkNode } from '../harness/safekeepers.js'
import { sleep, waitFor } from '../harness/wait.js'

const TENANT = 'e5'.repeat(16)
const TIMELINE = 'f6'.repeat(16)
const SEG = 1024 * 1024

let pg: PgCluster
let sks: SafekeeperSet

beforeAll(async () => {
  sks = await SafekeeperSet.create(3, { tenant: TENANT, timeline: TIMELINE })
  pg = await startPostgres({
    name: 'sk-recovery-compute',
    initdbArgs: [`--wal-segsize=${SEG / 1024 / 1024}`],
    settings: {
      wal_level: 'replica',
      max_wal_senders: 10,
      synchronous_commit: 'on',
      // Nothing kept for a standby that is away: its WAL is gone after a checkpoint or two.
      wal_keep_size: 0,
      min_wal_size: '2MB',
      max_wal_size: '4MB',
    },
  })
  await sks.startAll()
  await pg.sql('CHECKPOINT')
  const start = await pg.sql('SELECT pg_current_wal_insert_lsn()')
  await sks.createTimeline(await pg.sql('SELECT system_identifier FROM pg_control_system()'), start, SEG)
  for (const n of sks.nodes) await sks.setCompute(n, pg.connectionString(), 1)
  await pg.sql([
    "ALTER SYSTEM SET synchronous_standby_names = 'ANY 2 (sk1, sk2, sk3)'",
    'SELECT pg_reload_conf()',
  ])
  await commit(pg, 'CREATE TABLE t (i int, pad text)')
})

afterAll(async () => {
  await sks?.destroy()
  await pg?.destroy()
  // Peers and computes going away are warnings; an error would be a bug, and so would a write by a
  // stream that does not hold the WAL store.
  expect(sks.logged.filter((l) => l.level === 'error')).toEqual([])
  expect(sks.logged.filter((l) => JSON.stringify(l).includes('while the WAL store belongs to'))).toEqual([])
})

/** Writes more than two segments of WAL and has the compute drop them; returns the compute's flush LSN. */
async function writeAndRecycle(from: Lsn): Promise<Lsn> {
  for (let i = 0; i < 3; i++) {
    await commit(pg, [
      `INSERT INTO t SELECT i, repeat('r', 200) FROM generate_series(1, 2000) i`,
      'SELECT pg_switch_wal()',
    ])
  }
  await commit(pg, "INSERT INTO t VALUES (0, 'after the switches')")
  await pg.sql('CHECKPOINT')
  await pg.sql('CHECKPOINT')
  const gone = walFileName(1, segmentNumber(from, SEG), SEG)
  expect(readdirSync(pg.walDir)).not.toContain(gone)
  return computeFlush(pg)
}

/** Digests of every safekeeper over the same range: the WAL they hold is the same bytes. */
async function expectSameWal(ns: SkNode[], from: Lsn, until: Lsn): Promise<void> {
  const q = `?from_lsn=${formatLsn(from)}&until_lsn=${formatLsn(until)}`
  const digests = await Promise.all(ns.map((n) => sks.http(n, 'GET', `${sks.tlPath}/digest${q}`)))
  for (const d of digests) expect(d.status).toBe(200)
  expect(new Set(digests.map((d) => d.json.sha256)).size).toBe(1)
}

const recovered = (n: SkNode, from: number) =>
  sks.logged
    .slice(from)
    .filter((l) => l.id === n.config.id && l.level === 'info' && l.msg.startsWith('recovered WAL from peer'))

describe('peer recovery', () => {
  it('catches up a safekeeper whose WAL the compute recycled while it was down (test_lagging_sk)', async () => {
    const [sk1, sk2, sk3] = sks.nodes
    await sks.stop(sk3)
    const behind = (await sks.lsns(sk1)).flush
    const flushed = await writeAndRecycle(behind)
    expect(flushed - behind).toBeGreaterThan(2 * SEG)

    const logFrom = sks.logged.length
    await sks.start(sk3)
    await waitFor('sk3 to reach the compute flush', async () =>
      (await sks.lsns(sk3)).flush >= flushed ? true : undefined,
    )
    const d = await sks.detail(sk3)
    expect(d.recovery).toMatchObject({ state: 'done', start_lsn: formatLsn(behind), last_error: null })
    expect([sks.httpAddr(sk1), sks.httpAddr(sk2)]).toContain(d.recovery?.from)
    expect(recovered(sk3, logFrom).length).toBeGreaterThanOrEqual(1)
    expect(recovered(sk3, logFrom)[0].fields).toMatchObject({
      bytes: expect.any(Number),
      ms: expect.any(Number),
    })
    // The compute could not have served it: sk3's acceptor asked for WAL it no longer has.
    expect(
      sks.logged
        .slice(logFrom)
        .some((l) => l.id === sk3.config.id && l.msg.startsWith('WAL acceptor connection failed')),
    ).toBe(true)
    await expectSameWal(sks.nodes, parseLsn(d.timeline_start_lsn), flushed)

    // Its acceptor streams from the compute again once recovery is done: sk3 and sk2 commit without sk1.
    await sks.stop(sk1)
    await commit(pg, "INSERT INTO t VALUES (-1, 'sk1 down')", 15_000)
    await sks.start(sk1)
    await waitFor('sk1 to be back', async () =>
      (await sks.lsns(sk1)).flush >= (await computeFlush(pg)) ? true : undefined,
    )
  })

  it('takes no WAL from a peer of another term, and does once the terms agree', async () => {
    const [sk1, sk2, sk3] = sks.nodes
    await sks.stop(sk1)
    const behind = (await sks.lsns(sk2)).flush
    const flushed = await writeAndRecycle(behind)
    await waitFor('sk2 and sk3 to have it all', async () =>
      (await Promise.all([sk2, sk3].map((n) => sks.lsns(n)))).every((l) => l.flush >= flushed)
        ? true
        : undefined,
    )
    // sk2 and sk3 move on to term 2, whose compute is nowhere; sk1 comes back in term 1.
    const nowhere = 'postgresql://postgres@127.0.0.1:1/postgres'
    await sks.setCompute(sk2, nowhere, 2)
    await sks.setCompute(sk3, nowhere, 2)
    const logFrom = sks.logged.length
    await sks.start(sk1)
    await waitFor('sk1 to hear of term 2 from both peers', async () =>
      (await sks.detail(sk1)).peers.filter((p) => p.term === 2).length === 2 ? true : undefined,
    )
    await sleep(1500)
    const alone = await sks.detail(sk1)
    expect(parseLsn(alone.flush_lsn)).toBeLessThan(flushed)
    expect(alone.recovery).toBeNull()
    expect(recovered(sk1, logFrom)).toEqual([])

    // Term 3 on all three: the compute still lacks sk1's WAL, and now its peers may hand it over.
    for (const n of sks.nodes) await sks.setCompute(n, pg.connectionString(), 3)
    await waitFor('sk1 to catch up in term 3', async () =>
      (await sks.lsns(sk1)).flush >= flushed ? true : undefined,
    )
    expect((await sks.detail(sk1)).recovery).toMatchObject({
      state: 'done',
      start_lsn: formatLsn(parseLsn(alone.flush_lsn)),
    })
    expect(recovered(sk1, logFrom).length).toBeGreaterThanOrEqual(1)
    await commit(pg, "INSERT INTO t VALUES (-3, 'term 3')", 15_000)
    const end = await computeFlush(pg)
    await waitFor('all three to have term 3 WAL', async () =>
      (await Promise.all(sks.nodes.map((n) => sks.lsns(n)))).every((l) => l.flush >= end) ? true : undefined,
    )
    await expectSameWal(sks.nodes, parseLsn(alone.timeline_start_lsn), end)
  })

  it('is served by a walsender only in the term it names', async () => {
    const [sk1] = sks.nodes
    const term = (await sks.detail(sk1)).acceptor_state.term
    const connect = (t: number) =>
      PgClient.connect({
        ...sk1.config.listenPgAddr,
        user: 'postgres',
        params: {
          replication: 'true',
          application_name: 'test',
          options: `-c tenant_id=${TENANT} -c timeline_id=${TIMELINE} -c term=${t}`,
        },
      })
    const other = await connect(term + 1)
    try {
      const at = (await sks.detail(sk1)).commit_lsn
      const err = await other.copyBoth(`START_REPLICATION PHYSICAL ${at}`).then(
        () => null,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(PgServerError)
      expect((err as Error).message).toContain(`failed to acquire term ${term + 1}`)
    } finally {
      await other.close()
    }
    // In its term it reports the flush LSN, not commit_lsn, as the end of what it serves.
    const current = await connect(term)
    try {
      const row = await current.query('IDENTIFY_SYSTEM')
      expect(JSON.stringify(row)).toContain((await sks.detail(sk1)).flush_lsn)
    } finally {
      await current.close()
    }
  })
})
