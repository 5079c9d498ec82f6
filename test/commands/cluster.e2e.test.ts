/**
 * The local cluster as a user runs it: the built CLI in a temp repo dir, on ports free at run time, real
 * PostgreSQL 15 computes, node-postgres as the client, and psql once, as `pg start` tells users to connect.
 * Every cluster here has init's default of one safekeeper, as the README's walkthrough does.
 */
import net from 'node:net'
import { execa, type ResultPromise } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LadderRung } from '../../src/control/lsn-ladder.js'
import { isAlive } from '../../src/control/process.js'
import { BIN, type Cluster, newCluster, teardown } from '../harness/cli.js'
import { showTenantConfig } from '../harness/page-service.js'
import { pgBin } from '../harness/postgres.js'
import { query, queryText } from '../harness/sql.js'
import { waitFor, waitUntil } from '../harness/wait.js'

async function flushLsn(connstr: string): Promise<string> {
  const [{ lsn }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn')
  return lsn
}

interface EndpointListed {
  name: string
  connstr: string
  commit_lsn: string | null
  safekeepers: { id: number; reachable: boolean }[]
  ladder: LadderRung[]
}

async function connstrOf(c: Cluster, endpoint: string): Promise<string> {
  const rows = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]
  return rows.find((r) => r.name === endpoint)!.connstr
}

/**
 * A failed command as a user sees it: a non-zero exit, one `Error:` line on stderr, at most a hint and a
 * log file after it, no stack trace.
 */
function expectCleanFailure(r: { exitCode: number; stderr: string }, message: RegExp): void {
  expect(r.exitCode).not.toBe(0)
  const [first, ...rest] = r.stderr.trim().split('\n')
  expect(first).toMatch(/^Error: /)
  expect(first).toMatch(message)
  for (const l of rest) expect(l).toMatch(/^(Hint|Log): /)
}

describe('zenith local cluster', () => {
  let c: Cluster
  let tenantId: string
  let lsnMid: string

  beforeAll(async () => {
    c = await newCluster('main')
    await c.ok('start')
    tenantId = (JSON.parse(await c.ok('tenant', 'list', '--json')) as { tenant_id: string }[])[0].tenant_id
  })

  afterAll(() => teardown(c))

  it('runs Postgres on main, branches it mid-way, and keeps all data across destroy and restart', async () => {
    const started = await c.ok('pg', 'start', 'main')
    expect(started).toMatch(/started: endpoint main on branch main/)
    // init's default: one safekeeper, which acknowledges every commit.
    expect(started).toMatch(/^term 1: 1 of 1 safekeepers pull from it$/m)
    const main = await connstrOf(c, 'main')
    expect(await queryText(main, 'SHOW synchronous_standby_names')).toBe('ANY 1 (sk1)')
    await queryText(main, 'CREATE TABLE t (i int PRIMARY KEY, note text)')
    await queryText(main, "INSERT INTO t SELECT i, 'first' FROM generate_series(1, 100) i")
    lsnMid = await flushLsn(main)
    await queryText(main, "INSERT INTO t SELECT i, 'second' FROM generate_series(101, 200) i")

    await c.ok('timeline', 'branch', '--branch-name', 'mid', '--ancestor-start-lsn', lsnMid)
    const tree = JSON.parse(await c.ok('timeline', 'list', '--json')) as {
      branch: string
      ancestor_branch: string | null
    }[]
    expect(tree.map((t) => [t.branch, t.ancestor_branch])).toEqual([
      ['main', null],
      ['mid', 'main'],
    ])
    expect(await c.ok('timeline', 'list')).toMatch(/┗━ mid @/)
    await c.ok('pg', 'start', 'mid')
    const mid = await connstrOf(c, 'mid')
    expect(await queryText(mid, 'SELECT count(*), max(i) FROM t')).toBe('100|100')
    // The branch is writable and diverges without touching main.
    await queryText(mid, "INSERT INTO t VALUES (1000, 'on mid')")
    expect(await queryText(main, 'SELECT count(*) FROM t WHERE i = 1000')).toBe('0')

    await c.ok('pg', 'stop', 'main', '--destroy')
    const listed = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string }[]
    expect(listed.map((e) => e.name)).toEqual(['mid'])
    await c.ok('pg', 'start', 'main')
    // psql once, as a user would paste the command `pg start` printed.
    const advertised = /^connect with: (psql \S+)$/m.exec(started)?.[1]
    expect(advertised).toBe(`psql ${main}`)
    const viaPsql = await execa(pgBin('psql'), [
      main,
      '-X',
      '-A',
      '-t',
      '-c',
      'SELECT count(*), max(i) FROM t',
    ])
    expect(viaPsql.stdout).toBe('200|200')

    // Computes first, then the pageserver, then the safekeeper it reads WAL from, the controller last.
    expect((await c.ok('stop')).trim().split('\n')).toEqual([
      'endpoint mid stopped',
      'endpoint main stopped',
      'pageserver stopped',
      'safekeeper 1 stopped',
      'storage controller stopped',
    ])
    const stopped = JSON.parse(await c.ok('status', '--json'))
    expect(stopped.pageservers[0].running).toBe(false)
    expect(stopped.safekeepers.map((s: { id: number; state: string }) => [s.id, s.state])).toEqual([
      [1, 'stopped'],
    ])
    expect(stopped.endpoints.map((e: { status: string }) => e.status)).toEqual(['stopped', 'stopped'])
    await c.ok('start')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(main, 'SELECT count(*), max(i) FROM t')).toBe('200|200')
    await c.ok('pg', 'start', 'mid')
    expect(await queryText(mid, 'SELECT count(*) FROM t')).toBe('101')
  })

  it('shows an older LSN read-only', async () => {
    await c.ok('pg', 'create', 'main', '--name', 'past', '--lsn', lsnMid)
    await c.ok('pg', 'start', 'past')
    const past = await connstrOf(c, 'past')
    expect(await queryText(past, 'SELECT count(*), min(note), max(note) FROM t')).toBe('100|first|first')
    await expect(queryText(past, 'INSERT INTO t VALUES (5000)')).rejects.toThrow(/read-only transaction/)
    const rows = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; lsn: string | null }[]
    expect(rows.find((r) => r.name === 'past')?.lsn).toBe(lsnMid)
    await c.ok('pg', 'stop', 'past', '--destroy')
  })

  it('sets tenant config that HTTP and the page service both show', async () => {
    await c.ok('tenant', 'config', '--gc-horizon', '64 MiB', '--pitr-interval', '2 h')
    const viaHttp = await (await fetch(`http://127.0.0.1:${c.http}/v1/tenant/${tenantId}/config`)).json()
    expect(viaHttp.tenant_specific_overrides).toEqual({ gc_horizon: 67108864, pitr_interval: '2 h' })
    expect(viaHttp.effective_config.gc_horizon).toBe(67108864)
    const shown = await showTenantConfig(c.pg, tenantId)
    expect(shown.gc_horizon).toBe('67108864')
    expect(shown.pitr_interval).toBe('2 h')
    const printed = await c.ok('tenant', 'config')
    expect(printed).toMatch(/gc_horizon\s+67108864\s+tenant/)
    expect(printed).toMatch(/compaction_threshold\s+10\s+default/)
  })

  it('refuses bad input with one clear line and a non-zero exit', async () => {
    expectCleanFailure(await c.zenith('pg', 'start', 'nosuch'), /no endpoint or branch named "nosuch"/)
    expect(
      (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; status: string }[]).find(
        (e) => e.name === 'main',
      )?.status,
    ).toBe('running')
    expectCleanFailure(
      await c.zenith('timeline', 'branch', '--branch-name', 'x', '--ancestor-start-lsn', '12345'),
      /invalid LSN "12345"/,
    )
    expectCleanFailure(
      await c.zenith('timeline', 'branch', '--branch-name', 'mid'),
      /branch "mid" already exists/,
    )
    expectCleanFailure(
      await c.zenith('timeline', 'branch', '--branch-name', 'y', '--ancestor-branch-name', 'nosuch'),
      /unknown branch "nosuch"/,
    )
    expectCleanFailure(await c.zenith('tenant', 'config', '--gc-horizon=-5'), /gc_horizon/)
    expectCleanFailure(
      await c.zenith('tenant', 'config', '--tenant-id', 'f'.repeat(32)),
      /tenant f{32} not found/,
    )
    expectCleanFailure(
      await c.zenith('tenant', 'config', '--tenant-id', 'nothex'),
      /invalid tenant id "nothex"/,
    )
    expectCleanFailure(
      await c.zenith('pg', 'create', 'main', '--name', 'far', '--lsn', 'FF/0'),
      /beyond the end of branch main/,
    )

    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const busy = (blocker.address() as net.AddressInfo).port
    try {
      expectCleanFailure(
        await c.zenith('pg', 'create', 'main', '--name', 'busy', '--port', String(busy)),
        /port \d+ on 127.0.0.1 is already in use/,
      )
    } finally {
      blocker.close()
    }

    const bad = await fetch(`http://127.0.0.1:${c.http}/v1/tenant/${tenantId}/timeline`, {
      method: 'POST',
      body: '{"new_timeline_id": ',
    })
    expect(bad.status).toBe(400)
    expect((await bad.json()).msg).toMatch(/malformed JSON/)

    // With no history kept, a branch at an older LSN is below the GC cutoff.
    await c.ok('tenant', 'config', '--gc-horizon', '0', '--pitr-interval', '0 s')
    expectCleanFailure(
      await c.zenith('timeline', 'branch', '--branch-name', 'old', '--ancestor-start-lsn', lsnMid),
      /garbage-collected history below/,
    )
    await c.ok('tenant', 'config', '-c', 'gc_horizon=null', '-c', 'pitr_interval=null')
    const names = (JSON.parse(await c.ok('timeline', 'list', '--json')) as { branch: string }[]).map(
      (b) => b.branch,
    )
    expect(names).toEqual(['main', 'mid'])
  })
  it('keeps listing with the safekeeper killed, starts only it again, and loses nothing when everything is killed', async () => {
    const main = await connstrOf(c, 'main')
    const status = JSON.parse(await c.ok('status', '--json'))
    const skPid = status.safekeepers[0].pid as number
    process.kill(skPid, 'SIGKILL')
    await waitUntil(`safekeeper 1 (pid ${skPid}) is gone`, () => !isAlive(skPid))
    const listed = (JSON.parse(await c.ok('pg', 'list', '--json')) as EndpointListed[]).find(
      (e) => e.name === 'main',
    )!
    expect(listed.commit_lsn).toBeNull()
    expect(listed.safekeepers).toEqual([
      { id: 1, reachable: false, term: null, flush_lsn: null, commit_lsn: null, lag_seconds: null },
    ])
    // Its rungs of the ladder are unknown; the compute's and the pageserver's are still there.
    const rungs = Object.fromEntries(listed.ladder.map((r) => [r.name, r]))
    expect([rungs.safekeeper_flush.lsn, rungs.commit.lsn, rungs.commit.lag_bytes]).toEqual([null, null, null])
    expect(rungs.compute_flush.lsn).not.toBeNull()
    expect(rungs.last_record.lsn).not.toBeNull()
    expect(await c.ok('pg', 'list')).toMatch(/\nsafekeeper 1 not reachable: /)
    expect(await c.ok('timeline', 'show', 'main')).toMatch(/^safekeeper 1 +unreachable$/m)
    expect((await c.ok('start')).trim().split('\n')).toEqual([
      `the storage controller is already running (pid ${status.storage_controller.pid})`,
      expect.stringMatching(/^safekeeper 1 started \(pid \d+\)$/),
      `the pageserver is already running (pid ${status.pageservers[0].pid})`,
    ])
    // The safekeeper pulls from the compute again, so commits return.
    await queryText(main, "INSERT INTO t SELECT i, 'third' FROM generate_series(201, 300) i")

    await c.ok('stop', '--immediate')
    await c.ok('start')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(main, 'SELECT count(*), max(i) FROM t')).toBe('300|300')
    // The pageserver reads the WAL from the safekeeper, and shows its commit_lsn beside its own LSNs.
    const shown = await waitFor('the pageserver to stream everything the safekeeper committed', async () => {
      const t = JSON.parse(await c.ok('timeline', 'show', 'main', '--json'))
      const caughtUp = t.walreceiver_status === 'streaming' && t.last_record_lsn === t.commit_lsn
      return caughtUp ? t : undefined
    })
    expect(shown.walreceiver_safekeeper).toBe(1)
    expect(shown.safekeepers).toEqual([
      {
        id: 1,
        reachable: true,
        term: expect.any(Number),
        flush_lsn: expect.any(String),
        commit_lsn: shown.commit_lsn,
        lag_seconds: expect.any(Object),
      },
    ])
    expect(await c.ok('timeline', 'show', 'main')).toMatch(
      new RegExp(`^commit_lsn +${shown.commit_lsn}\\b`, 'm'),
    )
    expect(await c.ok('pg', 'list')).toMatch(/ PS LAST +PS DISK +SK COMMIT +LAG +WAL RECEIVER /)
    await c.ok('pg', 'stop', 'main', '--destroy')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(main, 'SELECT count(*), max(i) FROM t')).toBe('300|300')
  })
})

describe('zenith start --embedded', () => {
  let c: Cluster | undefined
  let embedded: ResultPromise | undefined

  /** Wrapped: an async function returning the subprocess itself would wait for it to exit. */
  const startEmbedded = async (cl: Cluster): Promise<{ proc: ResultPromise }> => {
    const proc = execa('node', [BIN, 'start', '--embedded', '--repo-dir', cl.repo], { reject: false })
    for (let i = 0; i < 200; i++) {
      const s = await cl.zenith('pageserver', 'status', '--json')
      if (s.exitCode === 0 && JSON.parse(s.stdout).reachable) return { proc }
      await new Promise((r) => setTimeout(r, 100))
    }
    proc.kill('SIGKILL')
    throw new Error('the embedded pageserver did not come up')
  }

  afterAll(async () => {
    embedded?.kill('SIGKILL')
    await teardown(c)
  })

  it('runs the pageserver inside the CLI until Ctrl-C, and the data outlives it', async () => {
    c = await newCluster('embedded')
    embedded = (await startEmbedded(c)).proc
    const status = JSON.parse(await c.ok('status', '--json'))
    expect(status.pageservers[0].pid).toBe(embedded.pid)
    await c.ok('pg', 'start', 'main')
    const main = await connstrOf(c, 'main')
    await queryText(main, 'CREATE TABLE e AS SELECT generate_series(1, 50) AS i')

    // Ctrl-C stops the pageserver cleanly while the compute keeps running; a new one picks up its WAL.
    embedded.kill('SIGINT')
    expect((await embedded).exitCode).toBe(0)
    embedded = (await startEmbedded(c)).proc
    await queryText(main, 'INSERT INTO e SELECT generate_series(51, 60)')
    const lsn = await flushLsn(main)
    await queryText(main, 'INSERT INTO e SELECT generate_series(61, 70)')
    await c.ok('timeline', 'branch', '--branch-name', 'then', '--ancestor-start-lsn', lsn)
    await c.ok('pg', 'start', 'then')
    expect(await queryText(await connstrOf(c, 'then'), 'SELECT count(*), max(i) FROM e')).toBe('60|60')

    // `zenith stop` from another shell stops the compute, then the embedded pageserver.
    await c.ok('stop')
    expect((await embedded).exitCode).toBe(0)
    embedded = (await startEmbedded(c)).proc
    await c.ok('pg', 'stop', 'main', '--destroy')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(main, 'SELECT count(*) FROM e')).toBe('70')
    await c.ok('stop')
    expect((await embedded).exitCode).toBe(0)
    embedded = undefined
  })
})

describe('zenith start on a busy port, then pageserver and tenant commands', () => {
  let c: Cluster | undefined

  afterAll(() => teardown(c))

  it('names the busy port, then starts, stops and creates tenants on request', async () => {
    c = await newCluster('busy')
    // Without a pageserver, starting a compute fails and leaves no endpoint behind.
    expectCleanFailure(await c.zenith('pg', 'start', 'main'), /pageserver is not reachable/)
    expect(JSON.parse(await c.ok('pg', 'list', '--json'))).toEqual([])
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(c!.http, '127.0.0.1', resolve))
    try {
      expectCleanFailure(
        await c.zenith('start'),
        new RegExp(`pageserver HTTP API port ${c.http} on 127.0.0.1 is already in use`),
      )
      expect(JSON.parse(await c.ok('status', '--json')).pageservers[0].running).toBe(false)
    } finally {
      blocker.close()
    }
    expect(await c.ok('start')).toMatch(/pageserver started/)
    expect(await c.ok('start')).toMatch(/already running/)

    // The pageserver on its own, and a second tenant made the default.
    expect(await c.ok('pageserver', 'stop')).toMatch(/pageserver stopped/)
    expect(await c.ok('pageserver', 'stop')).toMatch(/was not running/)
    expect(JSON.parse(await c.ok('pageserver', 'status', '--json')).running).toBe(false)
    expect(await c.ok('pageserver', 'start')).toMatch(/pageserver started/)
    expect(JSON.parse(await c.ok('pageserver', 'status', '--json')).reachable).toBe(true)
    const created = JSON.parse(
      await c.ok('tenant', 'create', '--set-default', '-c', 'gc_horizon=1 MiB', '--json'),
    )
    const tenants = JSON.parse(await c.ok('tenant', 'list', '--json')) as {
      tenant_id: string
      is_default: boolean
    }[]
    expect(tenants).toHaveLength(2)
    expect(tenants.find((t) => t.is_default)?.tenant_id).toBe(created.tenant_id)
    const cfg = JSON.parse(await c.ok('tenant', 'config', '--json'))
    expect(cfg.tenant_id).toBe(created.tenant_id)
    expect(cfg.tenant_specific_overrides).toEqual({ gc_horizon: 1048576 })
    const branches = JSON.parse(await c.ok('timeline', 'list', '--json')) as {
      branch: string
      timeline_id: string
    }[]
    expect(branches.map((b) => [b.branch, b.timeline_id])).toEqual([['main', created.timeline_id]])
  })
})
