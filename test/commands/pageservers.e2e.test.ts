/**
 * More than one pageserver: `pageserver start 2` adds one with the first one's settings and ports + 1,
 * `pageserver list` and `status` show both, bad ids are refused in one line, `zenith stop` stops both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'

let c: Cluster

beforeAll(async () => {
  c = await newCluster('pageservers', {}, ['--num-safekeepers', '0'])
}, 120_000)

afterAll(() => teardown(c), 60_000)

interface Row {
  id: number
  status: string
  pid: number | null
  http_port: number
  pg_port: number
  tenants: number | null
}

describe('pageservers', () => {
  it('adds pageserver 2 on its first start, lists both and stops both', async () => {
    await c.ok('start')
    const added = JSON.parse(await c.ok('pageserver', 'start', '2', '--json'))
    expect(added).toMatchObject({ id: 2, added: true, already_running: false })
    expect(added.log_file).toMatch(/pageserver_2\/pageserver\.log$/)
    expect(await c.ok('pageserver', 'start', '2')).toMatch(/^the pageserver 2 is already running \(pid \d+\)/)

    const rows = JSON.parse(await c.ok('pageserver', 'list', '--json')) as Row[]
    expect(rows.map((r) => [r.id, r.status, r.http_port, r.pg_port, r.tenants])).toEqual([
      [1, 'running', c.http, c.pg, 1],
      [2, 'running', c.http + 1, c.pg + 1, 0],
    ])
    const text = await c.ok('pageserver', 'list')
    expect(text.split('\n')[0]).toMatch(/^ID\s+STATUS\s+PID\s+PG PORT\s+HTTP PORT\s+TENANTS$/)
    const tenants = JSON.parse(await c.ok('tenant', 'list', '--json'))
    expect(tenants.map((t: { pageserver_id: number }) => t.pageserver_id)).toEqual([1])
    expect(await c.ok('status')).toMatch(/pageserver 2\s+running/)

    const unknown = await c.zenith('pageserver', 'stop', '3')
    expect(unknown.exitCode).not.toBe(0)
    expect(unknown.stderr.trim().split('\n')[0]).toBe('Error: unknown pageserver 3; pageservers: 1, 2')
    const bad = await c.zenith('pageserver', 'start', '100')
    expect(bad.exitCode).not.toBe(0)
    expect(bad.stderr).toContain('pageserver id 100 is not valid: use 1..99')

    await c.ok('stop')
    const status = JSON.parse(await c.ok('status', '--json'))
    expect(status.pageservers.map((p: { id: number; state: string }) => [p.id, p.state])).toEqual([
      [1, 'stopped'],
      [2, 'stopped'],
    ])
    // A later start starts both again.
    expect(await c.ok('start')).toMatch(/pageserver 2 started/)
  }, 120_000)
})
