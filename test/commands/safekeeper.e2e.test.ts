/**
 * Safekeepers as processes of the local cluster, through the built CLI: three made by init on ports
 * free at run time, started and stopped one by one and with the cluster, one killed and shown as died
 * with its log, a crash after which `zenith start` starts only what is down, and the errors a user gets
 * for an id or a count that does not exist.
 */
import { execa, type ResultPromise } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/control/process.js'
import { BIN, type Cluster, freePortBase, newCluster, runZenith, teardown } from '../harness/cli.js'
import { withTempDir } from '../harness/postgres.js'
import { waitUntil } from '../harness/wait.js'

interface Row {
  id: number
  status: string
  died: boolean
  pid: number | null
  pg_port: number
  http_port: number
  timelines:
    | {
        tenant_id: string
        timeline_id: string
        term: number
        flush_lsn: string
        commit_lsn: string
        lag_bytes: number | null
      }[]
    | null
}

describe('zenith safekeeper', () => {
  let c: Cluster | undefined
  let pgBase: number
  let httpBase: number
  let embedded: ResultPromise | undefined

  const list = async (): Promise<Row[]> => JSON.parse(await c!.ok('safekeeper', 'list', '--json'))
  const statuses = async () => (await list()).map((r) => r.status)

  beforeAll(async () => {
    // One run of six free ports: the libpq ports of safekeepers 1..3, then their HTTP ports.
    pgBase = await freePortBase(6)
    httpBase = pgBase + 3
    c = await newCluster('sk', {}, [
      '--num-safekeepers',
      '3',
      '--safekeeper-pg-port-base',
      String(pgBase),
      '--safekeeper-http-port-base',
      String(httpBase),
    ])
  })

  afterAll(async () => {
    embedded?.kill('SIGKILL')
    await teardown(c)
  })

  it('starts three with the cluster, stops and starts one, and lists their timelines', async () => {
    const cl = c!
    const started = await cl.ok('start')
    // The storage controller, then the safekeepers: the pageserver asks the one for its generations and
    // reads WAL from the others.
    expect(started.trim().split('\n')).toEqual([
      expect.stringMatching(/^storage controller started \(pid \d+\)$/),
      expect.stringMatching(/^safekeeper 1 started \(pid \d+\)$/),
      expect.stringMatching(/^safekeeper 2 started \(pid \d+\)$/),
      expect.stringMatching(/^safekeeper 3 started \(pid \d+\)$/),
      expect.stringMatching(/^pageserver started \(pid \d+\)$/),
    ])
    const rows = await list()
    expect(
      rows.map(({ id, status, pg_port, http_port, timelines }) => ({
        id,
        status,
        pg_port,
        http_port,
        timelines,
      })),
    ).toEqual(
      [1, 2, 3].map((id) => ({
        id,
        status: 'running',
        pg_port: pgBase + id,
        http_port: httpBase + id,
        timelines: [],
      })),
    )
    for (const r of rows) expect(isAlive(r.pid!)).toBe(true)

    expect((await cl.ok('safekeeper', 'stop', '2')).trim()).toBe('safekeeper 2 stopped')
    expect(isAlive(rows[1].pid!)).toBe(false)
    const stopped = (await list())[1]
    expect(stopped).toMatchObject({ id: 2, status: 'stopped', pid: null, timelines: null })
    const again = JSON.parse(await cl.ok('safekeeper', 'start', '2', '--json'))
    expect(again).toEqual([
      {
        id: 2,
        pid: expect.any(Number),
        already_running: false,
        log_file: `${cl.repo}/safekeepers/sk2/safekeeper.log`,
      },
    ])
    expect(await statuses()).toEqual(['running', 'running', 'running'])
    expect(await cl.ok('safekeeper', 'start')).toMatch(/^safekeeper 1 is already running \(pid \d+\)/)

    // A timeline made on safekeeper 1 through its API shows in the list, as the API reports it.
    const tenant = 'a1'.repeat(16)
    const timeline = 'b2'.repeat(16)
    const res = await fetch(`http://127.0.0.1:${httpBase + 1}/v1/tenant/timeline`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant_id: tenant,
        timeline_id: timeline,
        system_id: '1',
        start_lsn: '0/1000000',
      }),
    })
    expect(res.status).toBe(201)
    expect((await list()).map((r) => r.timelines)).toEqual([
      [
        {
          tenant_id: tenant,
          timeline_id: timeline,
          term: 0,
          flush_lsn: '0/1000000',
          commit_lsn: '0/1000000',
          // No compute writes to it.
          lag_bytes: null,
        },
      ],
      [],
      [],
    ])
    const table = await cl.ok('safekeeper', 'list')
    expect(table).toMatch(
      new RegExp(
        `^ID +STATUS +PID +PG PORT +HTTP PORT +TIMELINES\\n1 +running +\\d+ +${pgBase + 1} +${httpBase + 1} +1\\n`,
      ),
    )
    expect(table).toMatch(new RegExp(`\\n1 +${tenant} +${timeline} +0 +0/1000000 +0/1000000 +-$`))
  })

  it('shows a killed safekeeper as died with its log, and the cluster stops and starts them all', async () => {
    const cl = c!
    const pid = (await list())[2].pid!
    process.kill(pid, 'SIGKILL')
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50))

    const log = `${cl.repo}/safekeepers/sk3/safekeeper.log`
    const status = JSON.parse(await cl.ok('status', '--json'))
    expect(status.safekeepers.map((s: { state: string }) => s.state)).toEqual(['running', 'running', 'died'])
    const died = status.safekeepers[2]
    expect(died).toMatchObject({ id: 3, state: 'died', running: false, pid: null, log_file: log })
    expect((await list())[2]).toMatchObject({ id: 3, status: 'stopped', died: true, timelines: null })
    expect(await cl.ok('safekeeper', 'list')).toMatch(/\n3 +died +- /)
    expect(died.last_log_lines.at(-1)).toMatch(/ INFO {2}safekeeper started id=3 /)
    const text = await cl.ok('safekeeper', 'status', '3')
    expect(text).toBe(
      [
        `safekeeper 3 died, http 127.0.0.1:${httpBase + 3}, pg 127.0.0.1:${pgBase + 3}`,
        `its log ${log} ends:`,
        ...died.last_log_lines.map((l: string) => `  ${l}`),
      ].join('\n'),
    )
    expect(await cl.ok('status')).toMatch(
      new RegExp(
        `\\nsafekeeper 3 {8}died, http 127\\.0\\.0\\.1:${httpBase + 3}.*\\n {20}its log ${log} ends:\\n`,
      ),
    )

    const stopped = await cl.ok('stop')
    expect(stopped.trim().split('\n')).toEqual([
      'pageserver stopped',
      'safekeeper 1 stopped',
      'safekeeper 2 stopped',
      'safekeeper 3 was not running',
      'storage controller stopped',
    ])
    expect(await statuses()).toEqual(['stopped', 'stopped', 'stopped'])
    await cl.ok('start')
    expect(await statuses()).toEqual(['running', 'running', 'running'])
    // The timeline survived the restart: safekeeper 1 opened it again from its directory.
    expect((await list())[0].timelines).toHaveLength(1)

    // After a crash of safekeeper 2 and the pageserver, `zenith start` starts those two only.
    const before = await list()
    const psPid = JSON.parse(await cl.ok('pageserver', 'status', '--json')).pid as number
    for (const p of [before[1].pid!, psPid]) process.kill(p, 'SIGKILL')
    await waitUntil(
      'safekeeper 2 and the pageserver are gone',
      () => !isAlive(before[1].pid!) && !isAlive(psPid),
    )
    expect((await cl.ok('start')).trim().split('\n')).toEqual([
      expect.stringMatching(/^the storage controller is already running \(pid \d+\)$/),
      `safekeeper 1 is already running (pid ${before[0].pid})`,
      expect.stringMatching(/^safekeeper 2 started \(pid \d+\)$/),
      `safekeeper 3 is already running (pid ${before[2].pid})`,
      expect.stringMatching(/^pageserver started \(pid \d+\)$/),
    ])
    const after = await list()
    expect(after.map((r) => r.status)).toEqual(['running', 'running', 'running'])
    expect([after[0].pid, after[2].pid]).toEqual([before[0].pid, before[2].pid])
  })

  it('runs the safekeepers inside the CLI with --embedded, until `zenith stop` from another shell', async () => {
    const cl = c!
    await cl.ok('stop')
    embedded = execa('node', [BIN, 'start', '--embedded', '--repo-dir', cl.repo], {
      reject: false,
      env: { NO_COLOR: '1' },
    })
    const pid = embedded.pid!
    for (let i = 0; i < 200; i++) {
      if ((await list()).every((r) => r.status === 'running')) break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect((await list()).map((r) => [r.status, r.pid])).toEqual([1, 2, 3].map(() => ['running', pid]))
    expect((await cl.ok('stop')).trim().split('\n')).toEqual([
      'pageserver stopped',
      'safekeeper 1 stopped',
      'safekeeper 2 stopped',
      'safekeeper 3 stopped',
      'storage controller stopped',
    ])
    const r = await embedded
    embedded = undefined
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(
      /^storage controller running in this process \(pid \d+\): http 127\.0\.0\.1:\d+\nsafekeeper 1 running in this process \(pid \d+\): http 127\.0\.0\.1:\d+, pg 127\.0\.0\.1:\d+\n/,
    )
    expect(r.stdout).toMatch(
      /; Ctrl-C stops them\nstopping pageserver, safekeeper 3, safekeeper 2, safekeeper 1, storage controller\npageserver stopped\nsafekeeper 3 stopped\nsafekeeper 2 stopped\nsafekeeper 1 stopped\nstorage controller stopped$/,
    )
    expect(await statuses()).toEqual(['stopped', 'stopped', 'stopped'])
  })

  it('refuses an id the cluster does not have, naming the ids it has', async () => {
    const r = await c!.zenith('safekeeper', 'stop', '9')
    expect(r.exitCode).toBe(1)
    expect(r.stderr.trim()).toBe('Error: unknown safekeeper 9; safekeepers: 1, 2, 3')
    const j = await c!.zenith('safekeeper', 'status', '9', '--json')
    expect(j.exitCode).toBe(1)
    expect(JSON.parse(j.stdout).error).toMatchObject({ kind: 'not_found' })
  })

  it('refuses a safekeeper count other than 0, 1, 3 or 5 as a usage error', () =>
    withTempDir(async (dir) => {
      const r = await runZenith(['init', '--num-safekeepers', '2', '--repo-dir', `${dir}/repo`])
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toMatch(/^Error: Expected --num-safekeepers=2 to be one of: 0, 1, 3, 5\n/)
    }))
})
