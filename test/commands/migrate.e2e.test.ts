/**
 * `zenith tenant migrate` moves a live tenant between pageservers with Neon's choreography, without load
 * and while writers commit through the whole move (with a safekeeper): no acknowledged commit is lost,
 * the writers see no error, a compute rebuilt from the new pageserver dumps as the live one did, and the
 * old pageserver holds nothing of the tenant.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pageserverDir } from '../../src/control/layout.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { pgDump, query } from '../harness/sql.js'
import { AckWriters } from '../harness/writers.js'

let c: Cluster
let main: MainEndpoint

beforeAll(async () => {
  c = await newCluster('migrate', {}, ['--num-safekeepers', '1'])
  main = await startMain(c)
  await c.ok('pageserver', 'start', '2')
  await query(main.connstr, 'CREATE TABLE acks (writer int, seq int, pad text, PRIMARY KEY (writer, seq))')
  await query(
    main.connstr,
    'CREATE TABLE bulk AS SELECT i, md5(i::text) AS pad FROM generate_series(1, 30000) i',
  )
}, 120_000)

afterAll(() => teardown(c), 60_000)

interface Report {
  tenant_id: string
  from: number
  to: number
  generation: number
}

const servedBy = async () =>
  (JSON.parse(await c.ok('tenant', 'list', '--json')) as { tenant_id: string; pageserver_id: number }[]).find(
    (t) => t.tenant_id === main.tenantId,
  )?.pageserver_id

/** Stops main and starts it again: its datadir is made anew from a basebackup of the tenant's pageserver. */
async function rebuildMain(): Promise<string> {
  await c.ok('pg', 'stop', 'main', '--destroy')
  await c.ok('pg', 'start', 'main')
  return (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]).find(
    (e) => e.name === 'main',
  )!.connstr
}

/** What the old pageserver still holds of the tenant: listed tenants and its directory. */
async function leftOn(id: number): Promise<{ listed: boolean; dir: boolean }> {
  const rows = JSON.parse(await c.ok('pageserver', 'list', '--json')) as { id: number; tenants: number }[]
  return {
    listed: (rows.find((r) => r.id === id)?.tenants ?? 0) > 0,
    dir: existsSync(path.join(pageserverDir(c.repo, id), 'tenants', main.tenantId)),
  }
}

describe('zenith tenant migrate', () => {
  it('refuses a move to where the tenant is, and to a pageserver the cluster does not have', async () => {
    const same = await c.zenith('tenant', 'migrate', '--to', '1')
    expect(same.exitCode).not.toBe(0)
    expect(same.stderr.split('\n')[0]).toBe(`Error: tenant ${main.tenantId} is already on pageserver 1`)
    const unknown = await c.zenith('tenant', 'migrate', '--to', '7')
    expect(unknown.exitCode).not.toBe(0)
    expect(unknown.stderr.split('\n')[0]).toBe('Error: unknown pageserver 7; pageservers: 1, 2')
    // One that does not answer is found out before anything changes.
    await c.ok('pageserver', 'stop', '2')
    const down = await c.zenith('tenant', 'migrate', '--to', '2')
    expect(down.exitCode).not.toBe(0)
    expect(down.stderr.split('\n')[0]).toBe('Error: pageserver 2 does not answer: the tenant cannot move')
    expect(await servedBy()).toBe(1)
    await c.ok('pageserver', 'start', '2')
  }, 60_000)

  it('gives the tenant back to where it was when the new pageserver cannot attach it', async () => {
    // Pageserver 3 looks at another, empty remote storage: it finds no timeline of the tenant.
    await c.ok('pageserver', 'start', '3')
    await c.ok('pageserver', 'stop', '3')
    const toml = path.join(pageserverDir(c.repo, 3), 'pageserver.toml')
    const elsewhere = path.join(c.dir, 'other-remote')
    mkdirSync(elsewhere)
    writeFileSync(
      toml,
      readFileSync(toml, 'utf8').replace(/local_path = ".*"/, `local_path = "${elsewhere}"`),
    )
    await c.ok('pageserver', 'start', '3')
    const before = JSON.parse(await c.ok('storage-controller', 'status', '--json')).tenants[0].generation
    const r = await c.zenith('tenant', 'migrate', '--to', '3')
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr.split('\n')[0]).toMatch(
      new RegExp(`^Error: .*; the tenant stays on pageserver \\(generation ${before + 2}\\)$`),
    )
    expect(await servedBy()).toBe(1)
    expect(await leftOn(3)).toEqual({ listed: false, dir: false })
    // Pageserver 1 holds it at the newest generation again, and its compute writes.
    await query(main.connstr, 'INSERT INTO acks VALUES (99, 0, NULL)')
    await c.ok('pageserver', 'stop', '3')
  }, 60_000)

  it('moves an idle tenant to pageserver 2; a compute rebuilt from it has every row', async () => {
    const live = await pgDump(main.connstr)
    const report = JSON.parse(await c.ok('tenant', 'migrate', '--to', '2', '--json')) as Report
    expect(report).toMatchObject({ tenant_id: main.tenantId, from: 1, to: 2 })
    expect(await servedBy()).toBe(2)
    expect(await leftOn(1)).toEqual({ listed: false, dir: false })
    main.connstr = await rebuildMain()
    expect(await pgDump(main.connstr)).toBe(live)
  }, 180_000)

  it('moves it back while writers commit, losing no acknowledged commit', async () => {
    const writers = new AckWriters(main.connstr, 3, "INSERT INTO acks VALUES ($1, $2, repeat('w', 500))")
    writers.start()
    try {
      await new Promise((r) => setTimeout(r, 2000))
      const before = writers.total()
      const report = JSON.parse(await c.ok('tenant', 'migrate', '--to', '1', '--json')) as Report
      expect(report).toMatchObject({ from: 2, to: 1 })
      await new Promise((r) => setTimeout(r, 2000))
      // Writers went on through the move.
      expect(writers.total()).toBeGreaterThan(before)
    } finally {
      await writers.stop()
    }
    expect({ failures: writers.failures(), errors: writers.lastErrors() }).toEqual({
      failures: 0,
      errors: [null, null, null],
    })
    expect(await servedBy()).toBe(1)
    expect(await leftOn(2)).toEqual({ listed: false, dir: false })

    const rows = await query<{ k: string }>(main.connstr, "SELECT writer || '/' || seq AS k FROM acks")
    const have = new Set(rows.map((r) => r.k))
    expect(writers.ackedRows().filter((k) => !have.has(k))).toEqual([])
    const live = await pgDump(main.connstr)
    main.connstr = await rebuildMain()
    expect(await pgDump(main.connstr)).toBe(live)
  }, 240_000)
})
