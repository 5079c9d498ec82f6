/**
 * The local cluster as a user runs it: the built CLI in a temp repo dir, on ports free at run time, real
 * PostgreSQL 15 computes, node-postgres as the client, and psql once, as `pg start` tells users to connect.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type ResultPromise } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, isAlive } from '../../src/control/process.js'
import { showTenantConfig } from '../harness/page-service.js'
import { makeTempDir, pgBin } from '../harness/postgres.js'
import { query, queryText } from '../harness/sql.js'

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/run.js')

interface Cluster {
  dir: string
  repo: string
  http: number
  pg: number
  zenith(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>
  ok(...args: string[]): Promise<string>
}

async function newCluster(name: string): Promise<Cluster> {
  const dir = await makeTempDir(`zenith-e2e-${name}-`)
  const repo = path.join(dir, 'repo')
  const [http, pg, computeBase] = [await freePort(), await freePort(), await freePort()]
  const zenith = async (...args: string[]) => {
    const r = await execa('node', [BIN, ...args, '--repo-dir', repo], {
      reject: false,
      env: { NO_COLOR: '1' },
    })
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = async (...args: string[]) => {
    const r = await zenith(...args)
    if (r.exitCode !== 0) throw new Error(`zenith ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`)
    return r.stdout
  }
  await ok(
    'init',
    '--pageserver-http-port',
    String(http),
    '--pageserver-pg-port',
    String(pg),
    '--compute-port-base',
    String(computeBase),
  )
  return { dir, repo, http, pg, zenith, ok }
}

async function flushLsn(connstr: string): Promise<string> {
  const [{ lsn }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn')
  return lsn
}

async function connstrOf(c: Cluster, endpoint: string): Promise<string> {
  const rows = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]
  return rows.find((r) => r.name === endpoint)!.connstr
}

async function teardown(c: Cluster | undefined): Promise<void> {
  if (!c) return
  await c.zenith('stop', '--immediate')
  await rm(c.dir, { recursive: true, force: true })
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
    const main = await connstrOf(c, 'main')
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

    await c.ok('stop')
    const stopped = JSON.parse(await c.ok('status', '--json'))
    expect(stopped.pageserver.running).toBe(false)
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
    expectCleanFailure(await c.zenith('pg', 'stop', 'main', '--destroy', '--immediate'), /drop --immediate/)
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
  it('loses nothing when everything is killed: the compute recovers and the pageserver streams its WAL again', async () => {
    const main = await connstrOf(c, 'main')
    await queryText(main, "INSERT INTO t SELECT i, 'third' FROM generate_series(201, 300) i")
    await c.ok('stop', '--immediate')
    await c.ok('start')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(main, 'SELECT count(*), max(i) FROM t')).toBe('300|300')
    // What the killed pageserver held only in memory came back from the compute's WAL.
    const shown = JSON.parse(await c.ok('timeline', 'show', 'main', '--json'))
    expect(shown.walreceiver_status).toBe('streaming')
    expect(shown.wal_source_connstr).toBe(main)
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
    expect(status.pageserver.pid).toBe(embedded.pid)
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
      expect(JSON.parse(await c.ok('status', '--json')).pageserver.running).toBe(false)
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

describe('a pageserver that died', () => {
  let c: Cluster | undefined
  let embedded: ResultPromise | undefined
  /** Loaded into the pageserver's node: SIGUSR2 makes it fail as a bug would, nothing in zenith helps. */
  let crashEnv: Record<string, string>

  const pageserverStatus = async (cl: Cluster) => JSON.parse(await cl.ok('pageserver', 'status', '--json'))
  const waitUntil = async (what: string, cond: () => Promise<boolean>) => {
    for (let i = 0; i < 200; i++) {
      if (await cond()) return
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`timed out waiting until ${what}`)
  }
  const waitForDeath = (pid: number) => waitUntil(`pid ${pid} is gone`, async () => !isAlive(pid))
  const logOf = (cl: Cluster) => readFileSync(path.join(cl.repo, 'pageserver', 'pageserver.log'), 'utf8')

  beforeAll(async () => {
    c = await newCluster('died')
    const preload = path.join(c.dir, 'crash-on-sigusr2.mjs')
    writeFileSync(
      preload,
      `process.on('SIGUSR2', () => {
        if (process.env.CRASH_BY === 'rejection') Promise.reject(new Error('rejected on SIGUSR2'))
        else throw new Error('thrown on SIGUSR2')
      })\n`,
    )
    crashEnv = { NODE_OPTIONS: `--import=${preload}`, NO_COLOR: '1' }
  })

  afterAll(async () => {
    embedded?.kill('SIGKILL')
    await teardown(c)
  })

  it('shows a killed pageserver as died with its log, and a cleanly stopped one as stopped', async () => {
    const cl = c!
    await cl.ok('start')
    const { pid } = await pageserverStatus(cl)
    process.kill(pid, 'SIGKILL')
    await waitForDeath(pid)

    const log = path.join(cl.repo, 'pageserver', 'pageserver.log')
    const tail = logOf(cl).trimEnd().split('\n').slice(-10)
    const s = JSON.parse(await cl.ok('status', '--json')).pageserver
    expect(s).toMatchObject({ state: 'died', running: false, pid: null, log_file: log, last_log_lines: tail })
    expect(tail.at(-1)).toMatch(/ INFO {2}pageserver started /)
    const text = await cl.ok('pageserver', 'status')
    expect(text).toContain(`pageserver died, http 127.0.0.1:${cl.http}`)
    expect(text).toContain(`its log ${log} ends:\n`)
    expect(text.endsWith(`\n  ${tail.at(-1)}`)).toBe(true)
    expect(await cl.ok('status')).toMatch(new RegExp(`pageserver {2}died, .*\\n {12}its log ${log} ends:\\n`))

    await cl.ok('pageserver', 'start')
    await cl.ok('pageserver', 'stop')
    const stopped = await pageserverStatus(cl)
    expect(stopped.state).toBe('stopped')
    expect(stopped.last_log_lines).toBeUndefined()
    expect((await cl.ok('pageserver', 'status')).trim()).toBe(
      `pageserver stopped, http 127.0.0.1:${cl.http}, pg 127.0.0.1:${cl.pg}`,
    )
    expect(await cl.ok('status')).not.toContain('its log')
  })

  it('logs an uncaught exception with its stack as an ERROR line, and the process exits', async () => {
    const cl = c!
    await execa('node', [BIN, 'pageserver', 'start', '--repo-dir', cl.repo], { env: crashEnv })
    const { pid } = await pageserverStatus(cl)
    process.kill(pid, 'SIGUSR2')
    await waitForDeath(pid)
    const line = logOf(cl).trimEnd().split('\n').at(-1)!
    expect(line).toMatch(
      /^\S+Z ERROR uncaught exception error="thrown on SIGUSR2" stack="Error: thrown on SIGUSR2\\n {4}at .*crash-on-sigusr2\.mjs/,
    )
    const s = await pageserverStatus(cl)
    expect(s.state).toBe('died')
    expect(s.last_log_lines.at(-1)).toBe(line)
    await cl.ok('pageserver', 'stop')
  })

  it('logs an unhandled rejection of an embedded pageserver to its log file, and exits with code 1', async () => {
    const cl = c!
    embedded = execa('node', [BIN, 'start', '--embedded', '--repo-dir', cl.repo], {
      reject: false,
      env: { ...crashEnv, CRASH_BY: 'rejection' },
    })
    await waitUntil('the embedded pageserver answers', async () => (await pageserverStatus(cl)).reachable)
    embedded.kill('SIGUSR2')
    expect((await embedded).exitCode).toBe(1)
    embedded = undefined
    const line = logOf(cl).trimEnd().split('\n').at(-1)!
    expect(line).toMatch(
      /^\S+Z ERROR unhandled rejection error="rejected on SIGUSR2" stack="Error: rejected on SIGUSR2\\n/,
    )
    expect((await pageserverStatus(cl)).state).toBe('died')
  })
})
