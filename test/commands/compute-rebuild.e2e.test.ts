/**
 * A compute without safekeepers rebuilt after its datadir was lost, then the pageserver killed before it
 * flushes again — the fault soak's path. The compute's pg_wal starts at the basebackup, so the pageserver
 * must have everything below it on disk; otherwise the WAL in between exists nowhere. Without safekeepers
 * a writer is also not destroyed without a clean stop.
 */
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/control/process.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'
import { queryText } from '../harness/sql.js'
import { waitUntil } from '../harness/wait.js'

interface Shown {
  last_record_lsn: string
  disk_consistent_lsn: string
  walreceiver_status: string
  walreceiver_error: string | null
}

/** SQL that must not hang: a commit waits for the pageserver, which may never come back. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ])
}

describe('a compute rebuilt without safekeepers, then the pageserver killed', () => {
  let c: Cluster
  let tenantId: string
  let timelineId: string

  beforeAll(async () => {
    c = await newCluster('rebuild', {}, ['--num-safekeepers', '0'])
    await c.ok('start')
    const [main] = JSON.parse(await c.ok('timeline', 'list', '--json'))
    tenantId = main.tenant_id
    timelineId = main.timeline_id
  })

  afterAll(() => teardown(c))

  // Straight from the HTTP API, which `timeline show --json` prints: polled, a CLI run each would be slow.
  const show = async (): Promise<Shown> => {
    const r = await fetch(`http://127.0.0.1:${c.http}/v1/tenant/${tenantId}/timeline/${timelineId}`)
    return (await r.json()) as Shown
  }
  const logLines = () => readFileSync(path.join(c.repo, 'pageserver', 'pageserver.log'), 'utf8').split('\n')

  it('starts the new compute at what the pageserver has on disk, and loses nothing', async () => {
    await c.ok('pg', 'start', 'main')
    const [{ connstr }] = JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[]
    await queryText(connstr, "CREATE TABLE t AS SELECT i, 'before' AS note FROM generate_series(1, 1000) i")
    // Only a clean stop proves the pageserver has all of a writer's WAL: destroying needs one.
    const refused = await c.zenith('pg', 'stop', 'main', '--destroy', '--immediate')
    expect(refused.exitCode).toBe(1)
    expect(refused.stderr).toMatch(/^Error: endpoint "main" writes to branch main: .*; drop --immediate$/m)
    expect((JSON.parse(await c.ok('pg', 'list', '--json')) as { status: string }[])[0].status).toBe('running')
    const before = await show()
    // The rows are in the pageserver's memory only: that is what a restart of it would have to stream again.
    expect(parseLsn(before.disk_consistent_lsn)).toBeLessThan(parseLsn(before.last_record_lsn))

    // The compute dies and its datadir is lost.
    const pgdata = path.join(c.repo, 'pgdatadirs', 'tenants', tenantId, 'main', 'pgdata')
    const pid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0])
    process.kill(pid, 'SIGKILL')
    await waitUntil(`the postmaster ${pid} is gone`, () => !isAlive(pid))
    await rm(pgdata, { recursive: true, force: true })

    const started = await c.ok('pg', 'start', 'main')
    expect(started).toMatch(/the pageserver has main on disk up to /)
    const at = /^basebackup of main at (\S+):/m.exec(started)?.[1]
    expect(at).toBeDefined()
    const rebuilt = await show()
    expect(parseLsn(at!)).toBeLessThanOrEqual(parseLsn(rebuilt.disk_consistent_lsn))
    expect(parseLsn(at!)).toBeGreaterThanOrEqual(parseLsn(before.last_record_lsn))

    // The pageserver dies before it flushes again, and comes back.
    const { pid: psPid } = JSON.parse(await c.ok('pageserver', 'status', '--json'))
    process.kill(psPid, 'SIGKILL')
    await waitUntil(`the pageserver ${psPid} is gone`, () => !isAlive(psPid))
    const logFrom = logLines().length
    await c.ok('start')

    await within(
      15_000,
      'an insert after the restart',
      queryText(connstr, "INSERT INTO t VALUES (1001, 'after')"),
    )
    expect(await queryText(connstr, 'SELECT count(*), max(i) FROM t')).toBe('1001|1001')
    await waitUntil('the WAL receiver streams', async () => (await show()).walreceiver_status === 'streaming')
    // Let a reconnect loop show itself, if there were one.
    await new Promise((r) => setTimeout(r, 1000))
    const after = await show()
    expect(after.walreceiver_status).toBe('streaming')
    expect(after.walreceiver_error).toBeNull()
    const sessions = logLines()
      .slice(logFrom)
      .filter((l) => l.includes('WAL receiver streaming'))
    expect(sessions).toHaveLength(1)
    const [listed] = JSON.parse(await c.ok('pg', 'list', '--json'))
    expect(listed.walreceiver).toEqual({ status: 'streaming', error: null })
    // The pageserver's LSNs and its lag beside the receiver; no commit LSN column without safekeepers.
    expect(await c.ok('status')).toMatch(
      /^main +main +\d+ +running +latest +[0-9A-F]+\/[0-9A-F]+ +[0-9A-F]+\/[0-9A-F]+ +ps \S+( \S+)?\/\S+ s +streaming +postgresql:/m,
    )

    // What the pageserver has is everything: a compute built from it alone sees every row.
    await c.ok('pg', 'stop', 'main', '--destroy')
    await c.ok('pg', 'start', 'main')
    expect(await queryText(connstr, 'SELECT count(*), max(i) FROM t')).toBe('1001|1001')
  })
})
