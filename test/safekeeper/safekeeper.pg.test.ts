/**
 * A safekeeper as a stock Postgres compute's synchronous standby: a commit returns once the safekeeper
 * has its WAL on disk, the WAL it holds is the compute's byte for byte, a safekeeper that is gone holds
 * commits up until it is back, restarted after a kill it has all it holds committed, a compute of an
 * older term is refused, and its walsender serves the WAL to a replication client up to commit_lsn.
 */
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import {
  formatLsn,
  type Lsn,
  parseLsn,
  segmentNumber,
  segmentStart,
  walFileName,
} from '../../src/postgres/lsn.js'
import { WalDecoder } from '../../src/postgres/wal-decoder.js'
import { PgClient } from '../../src/protocol/client.js'
import {
  encodeStandbyStatusUpdate,
  parseIdentifySystem,
  parseXLogData,
} from '../../src/protocol/replication.js'
import type { SkTimelineInfo } from '../../src/safekeeper/api-types.js'
import { defaultSafekeeperConfig, type SafekeeperConfig } from '../../src/safekeeper/config.js'
import { readControlFile, SK_CONTROL_FILE_NAME, writeControlFile } from '../../src/safekeeper/control-file.js'
import { Safekeeper } from '../../src/safekeeper/safekeeper.js'
import { jsonRequest } from '../harness/http.js'
import { type PgCluster, startPostgres } from '../harness/postgres.js'
import { waitFor } from '../harness/wait.js'

const TENANT = 'a1'.repeat(16)
const TIMELINE = 'b2'.repeat(16)
const SEG = 16 * 1024 * 1024

let dir: string
let config: SafekeeperConfig
let sk: Safekeeper | undefined
let pg: PgCluster
let api: string
let startLsn: Lsn
const logged: { level: string; msg: string }[] = []

const startSafekeeper = async () => {
  sk = await Safekeeper.start(dir, { config, log: (level, msg) => logged.push({ level, msg }) })
}

const http = (method: string, path: string, body?: unknown) => jsonRequest(api, method, path, body)

const detail = async (): Promise<SkTimelineInfo> =>
  (await http('GET', `/v1/tenant/${TENANT}/timeline/${TIMELINE}`)).json

/** sha256 of the compute's own WAL files over [from, until). */
function computeDigest(from: Lsn, until: Lsn): string {
  const h = createHash('sha256')
  for (let lsn = from; lsn < until; ) {
    const seg = segmentNumber(lsn, SEG)
    const end = Math.min(until, segmentStart(seg + 1, SEG))
    const fd = openSync(path.join(pg.walDir, walFileName(1, seg, SEG)), 'r')
    try {
      const buf = Buffer.alloc(end - lsn)
      readSync(fd, buf, 0, buf.length, lsn - segmentStart(seg, SEG))
      h.update(buf)
    } finally {
      closeSync(fd)
    }
    lsn = end
  }
  return h.digest('hex')
}

const insertLsn = async () => parseLsn(await pg.sql('SELECT pg_current_wal_insert_lsn()'))

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-sk-'))
  config = {
    ...defaultSafekeeperConfig(1),
    listenPgAddr: { host: '127.0.0.1', port: await freePort() },
    listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
  }
  api = `http://127.0.0.1:${config.listenHttpAddr.port}`
  pg = await startPostgres({
    name: 'sk-compute',
    settings: { wal_level: 'replica', max_wal_senders: 10, synchronous_commit: 'on', wal_keep_size: '1GB' },
  })
  await startSafekeeper()
})

afterAll(async () => {
  await sk?.stop()
  await pg?.destroy()
  await rm(dir, { recursive: true, force: true })
  // Failures a test provokes are warnings; an error entry would be a bug.
  expect(logged.filter((l) => l.level === 'error')).toEqual([])
})

describe('a safekeeper', () => {
  it('becomes the synchronous standby of the compute of its term', async () => {
    await pg.sql('CHECKPOINT')
    startLsn = await insertLsn()
    const systemId = await pg.sql('SELECT system_identifier FROM pg_control_system()')
    const created = await http('POST', '/v1/tenant/timeline', {
      tenant_id: TENANT,
      timeline_id: TIMELINE,
      system_id: systemId,
      start_lsn: formatLsn(startLsn),
    })
    expect(created.status).toBe(201)
    expect(created.json).toMatchObject({ flush_lsn: formatLsn(startLsn), acceptor_state: { term: 0 } })
    const set = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: pg.connectionString(),
      term: 1,
    })
    expect(set.status).toBe(200)
    expect(set.json.acceptor_state).toEqual({
      term: 1,
      epoch: 1,
      term_history: [{ term: 1, lsn: formatLsn(startLsn) }],
    })
    await pg.sql(["ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (sk1)'", 'SELECT pg_reload_conf()'])
    await waitFor('sk1 to be a quorum standby', async () => {
      const s = await pg.sql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'sk1'")
      return s === 'quorum' ? s : undefined
    })
  })

  it("has a commit on disk when the commit returns, byte for byte the compute's WAL", async () => {
    await pg.sql("CREATE TABLE t AS SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 20000) i")
    const committed = await insertLsn()
    const d = await detail()
    expect(parseLsn(d.flush_lsn)).toBeGreaterThanOrEqual(committed)
    expect(parseLsn(d.commit_lsn)).toBeGreaterThanOrEqual(committed)
    expect(d.walreceivers).toMatchObject([{ term: 1, status: 'streaming', last_error: null }])
    const digest = await http(
      'GET',
      `/v1/tenant/${TENANT}/timeline/${TIMELINE}/digest?from_lsn=${formatLsn(startLsn)}&until_lsn=${formatLsn(committed)}`,
    )
    expect({ status: digest.status, msg: digest.json.msg }).toEqual({ status: 200, msg: undefined })
    expect(digest.json.sha256).toBe(computeDigest(startLsn, committed))
    const metrics = await (await fetch(`${api}/metrics`)).text()
    const fsyncs = Number(/^safekeeper_fsyncs_total (\d+)$/m.exec(metrics)?.[1])
    expect(Number(/^process_resident_memory_bytes (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0)
    expect(fsyncs).toBeGreaterThan(0)
    // Every group commit is timed; one covers at least one fsync.
    const flushes = Number(/^safekeeper_wal_flush_seconds_count (\d+)$/m.exec(metrics)?.[1])
    expect(flushes).toBeGreaterThan(0)
    expect(flushes).toBeLessThanOrEqual(fsyncs)
    expect(Number(/^safekeeper_wal_flush_seconds_sum ([\d.e-]+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0)
  })

  it('holds commits while it is down, and lets them finish once it is back', async () => {
    await sk!.stop()
    sk = undefined
    let done = false
    const insert = pg.sql("INSERT INTO t VALUES (-1, 'while the safekeeper was down')").then(() => {
      done = true
    })
    await new Promise((r) => setTimeout(r, 1500))
    expect(done).toBe(false)
    await startSafekeeper()
    await insert
    const after = await insertLsn()
    expect(parseLsn((await detail()).flush_lsn)).toBeGreaterThanOrEqual(after)
    expect(await pg.sql('SELECT count(*) FROM t')).toBe('20001')
  })

  it('has everything it holds committed after a kill, alone: its control file may lag its WAL', async () => {
    await sk!.stop()
    sk = undefined
    // A kill within a second of a write leaves commit_lsn in the control file behind the WAL on disk.
    const file = path.join(dir, TENANT, TIMELINE, SK_CONTROL_FILE_NAME)
    const state = readControlFile(file)
    writeControlFile(file, { ...state, commitLsn: state.truncateLsn })
    await startSafekeeper()
    const d = await detail()
    expect(parseLsn(d.commit_lsn)).toBeGreaterThan(state.truncateLsn)
    expect(d.commit_lsn).toBe(d.flush_lsn)
  })

  it('refuses a compute of an older term, and a second compute for the same term', async () => {
    const older = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: 'postgresql://postgres@127.0.0.1:1/postgres',
      term: 0,
    })
    expect(older.status).toBe(400)
    const same = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: 'postgresql://postgres@127.0.0.1:1/postgres',
      term: 1,
    })
    expect(same.status).toBe(409)
    expect(same.json.msg).toMatch(/term 1 already belongs to/)
    expect((await detail()).walreceivers).toMatchObject([{ connstr: pg.connectionString(), term: 1 }])

    // Term 2 goes to another compute: the one of term 1 is fenced off and cannot come back with it.
    const nowhere = 'postgresql://postgres@127.0.0.1:1/postgres'
    expect(
      (await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, { connstr: nowhere, term: 2 }))
        .status,
    ).toBe(200)
    const fenced = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: pg.connectionString(),
      term: 1,
    })
    expect(fenced.status).toBe(409)
    expect(fenced.json.msg).toMatch(/term 1 is older than term 2, which this safekeeper has accepted/)
    await waitFor('sk1 to leave the compute', async () =>
      (await pg.sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'sk1'")) === '0'
        ? true
        : undefined,
    )
    const back = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: pg.connectionString(),
      term: 3,
    })
    expect(back.json.acceptor_state.term_history.map((e: { term: number }) => e.term)).toEqual([1, 2, 3])
    await pg.sql("INSERT INTO t VALUES (-3, 'term 3')")
    expect((await detail()).walreceivers).toMatchObject([{ term: 3, status: 'streaming' }])
  })

  it("votes once for a newer term: stops pulling, ends its WAL at a record, and takes that term's compute", async () => {
    const vote = (term: number) => http('POST', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/vote`, { term })
    expect((await vote(3)).json).toMatchObject({ vote_given: false, term: 3 })
    const given = await vote(4)
    expect(given.status).toBe(200)
    expect(given.json).toMatchObject({ vote_given: true, term: 4, epoch: 3 })
    const d = await detail()
    expect(d.acceptor_state.term).toBe(4)
    expect(d.walreceivers).toEqual([])
    expect(d.flush_lsn).toBe(given.json.flush_lsn)
    // A commit now waits: the compute of term 3 has lost its standby.
    await waitFor('sk1 to leave the compute', async () =>
      (await pg.sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'sk1'")) === '0'
        ? true
        : undefined,
    )
    expect((await vote(4)).json.vote_given).toBe(false)
    const set = await http('PUT', `/v1/tenant/${TENANT}/timeline/${TIMELINE}/compute`, {
      connstr: pg.connectionString(),
      term: 4,
    })
    expect(set.status).toBe(200)
    await pg.sql("INSERT INTO t VALUES (-4, 'term 4')")
    expect((await detail()).acceptor_state.term_history.at(-1)).toEqual({
      term: 4,
      lsn: given.json.flush_lsn,
    })
  })

  it("serves its WAL as a walsender up to commit_lsn, and keeps the reader's feedback", async () => {
    const client = await PgClient.connect({
      ...config.listenPgAddr,
      user: 'postgres',
      params: {
        replication: 'true',
        application_name: 'pageserver',
        options: `-c tenant_id=${TENANT} -c timeline_id=${TIMELINE}`,
      },
    })
    try {
      const sys = parseIdentifySystem(await client.query('IDENTIFY_SYSTEM'))
      const d = await detail()
      expect(sys.systemId).toBe(d.system_id)
      expect(sys.xlogpos).toBe(parseLsn(d.commit_lsn))
      const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(startLsn)}`)
      const decoder = new WalDecoder({ startLsn, systemId: BigInt(d.system_id) })
      let received = startLsn
      let records = 0
      for await (const msg of stream) {
        if (msg[0] !== 0x77) continue
        const x = parseXLogData(msg)
        expect(x.walStart).toBe(received)
        decoder.feed(x.data)
        received += x.data.length
        while (decoder.next() !== null) records++
        if (received >= sys.xlogpos) break
      }
      expect(received).toBe(sys.xlogpos)
      expect(records).toBeGreaterThan(100)
      stream.send(encodeStandbyStatusUpdate({ write: received, flush: startLsn, apply: startLsn }))
      const fb = await waitFor(
        'the feedback to arrive',
        async () => (await detail()).pageserver_feedback ?? undefined,
      )
      expect(fb).toMatchObject({
        last_received_lsn: formatLsn(received),
        disk_consistent_lsn: formatLsn(startLsn),
      })
    } finally {
      await client.close()
    }
  })
})
