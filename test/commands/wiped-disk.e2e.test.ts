/**
 * A pageserver whose disk was wiped gets its tenant back from remote storage. With a workload on main
 * and on a branch, once remote_consistent_lsn has reached the last LSN of both, the cluster stops, the
 * pageserver's tenant directory goes, and `zenith start` brings it back: the storage controller's
 * re-attach hands the pageserver the tenant with a new generation, the pageserver attaches it from its
 * remote index (layers stay remote until read), and computes on both branches dump as before.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { pgDump, query } from '../harness/sql.js'
import { waitFor } from '../harness/wait.js'

let c: Cluster
let main: MainEndpoint

beforeAll(async () => {
  c = await newCluster('wiped-disk', {}, ['--num-safekeepers', '1'])
  main = await startMain(c)
}, 120_000)

afterAll(() => teardown(c), 60_000)

interface Show {
  last_record_lsn: string
  remote_consistent_lsn: string
}

const connstrOf = async (name: string) =>
  (JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; connstr: string }[]).find(
    (e) => e.name === name,
  )!.connstr

describe('a wiped pageserver disk', () => {
  it('gets the tenant back from remote storage, main and a branch dump as before', async () => {
    await query(
      main.connstr,
      'CREATE TABLE t AS SELECT i, repeat(md5(i::text), 4) AS pad FROM generate_series(1, 60000) i',
    )
    await query(main.connstr, 'CREATE INDEX t_i ON t (i)')
    await c.ok('timeline', 'branch', '--branch-name', 'dev')
    await c.ok('pg', 'start', 'dev')
    const dev = await connstrOf('dev')
    await query(dev, 'UPDATE t SET pad = upper(pad) WHERE i % 3 = 0')
    await query(dev, 'CREATE TABLE only_dev AS SELECT i FROM generate_series(1, 5000) i')
    await query(main.connstr, 'DELETE FROM t WHERE i % 7 = 0')
    const before = { main: await pgDump(main.connstr), dev: await pgDump(dev) }
    await c.ok('pg', 'stop', 'dev')
    await c.ok('pg', 'stop', 'main')

    // Everything received in remote storage: a checkpoint flushes it, the upload queue copies it.
    for (const branch of ['main', 'dev']) {
      await c.ok('timeline', 'checkpoint', branch)
      await waitFor(
        `remote_consistent_lsn of ${branch} at its last LSN`,
        async () => {
          const s = JSON.parse(await c.ok('timeline', 'show', branch, '--json')) as Show
          return s.remote_consistent_lsn === s.last_record_lsn ? true : undefined
        },
        30_000,
      )
    }
    const generation = async () =>
      (
        JSON.parse(await c.ok('storage-controller', 'status', '--json')) as {
          tenants: { tenant_id: string; generation: number }[]
        }
      ).tenants.find((t) => t.tenant_id === main.tenantId)!.generation
    const genBefore = await generation()
    await c.ok('stop')

    const tenantDir = path.join(c.repo, 'pageserver', 'tenants', main.tenantId)
    expect(existsSync(tenantDir)).toBe(true)
    rmSync(tenantDir, { recursive: true, force: true })

    await c.ok('start')
    expect(await generation()).toBeGreaterThan(genBefore)
    await c.ok('pg', 'start', 'main')
    await c.ok('pg', 'start', 'dev')
    expect(await pgDump(await connstrOf('main'))).toBe(before.main)
    expect(await pgDump(await connstrOf('dev'))).toBe(before.dev)
    // Attached from the index alone, the layers fetched as reads needed them.
    const log = readFileSync(path.join(c.repo, 'pageserver', 'pageserver.log'), 'utf8')
    expect(log).toMatch(new RegExp(`tenant attached from remote storage tenantId=${main.tenantId}`))
    expect(log).toMatch(/layer downloaded/)
  }, 240_000)
})
