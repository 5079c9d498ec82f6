/**
 * The storage controller as a user runs it, through the built CLI: `zenith init` writes its config and
 * the pageserver's control_plane_api, `zenith start` starts it first and `status` shows it, the default
 * tenant got generation 1 there, and a restart of the cluster makes the pageserver re-attach, which
 * bumps the generation to 2. init makes the default tenant with initdb, so PostgreSQL 15 is needed.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, teardown } from '../harness/cli.js'

interface Placement {
  tenant_id: string
  generation: number
  node_id: number
  mode: string
}

describe('zenith storage-controller', () => {
  let c: Cluster | undefined
  afterAll(() => teardown(c))

  it('issues generation 1 at init, one more at each start, and 1 to a new tenant', async () => {
    c = await newCluster('storage-controller')
    const cl = c
    const scToml = await readFile(path.join(cl.repo, 'storage_controller', 'storage_controller.toml'), 'utf8')
    const port = Number(/listen_http_addr = "127\.0\.0\.1:(\d+)"/.exec(scToml)?.[1])
    expect(port).toBeGreaterThan(0)
    const psToml = await readFile(path.join(cl.repo, 'pageserver', 'pageserver.toml'), 'utf8')
    expect(psToml).toContain(`id = 1\ncontrol_plane_api = "http://127.0.0.1:${port}/upcall/v1/"\n`)

    // init stopped it again; status reads what it issued from its state file.
    const down = JSON.parse(await cl.ok('storage-controller', 'status', '--json'))
    expect(down.state).toBe('stopped')
    expect(down.tenants).toEqual([
      {
        tenant_id: expect.stringMatching(/^[0-9a-f]{32}$/),
        generation: 1,
        node_id: 1,
        mode: 'AttachedSingle',
      },
    ])

    const started = (await cl.ok('start')).trim().split('\n')
    expect(started[0]).toMatch(/^storage controller started \(pid \d+\)$/)
    expect(started.at(-1)).toMatch(/^pageserver started \(pid \d+\)$/)
    const status = JSON.parse(await cl.ok('status', '--json'))
    expect(status.storage_controller).toMatchObject({
      state: 'running',
      reachable: true,
      http: `127.0.0.1:${port}`,
    })
    expect(await cl.ok('status')).toMatch(
      new RegExp(`storage controller +running \\(pid \\d+\\), http 127\\.0\\.0\\.1:${port}\\n`),
    )
    // The pageserver re-attached as it started: generation 2 for the tenant it holds.
    const running = JSON.parse(await cl.ok('storage-controller', 'status', '--json'))
    const defaultTenant = down.tenants[0].tenant_id
    expect(running.tenants).toEqual([
      { tenant_id: defaultTenant, generation: 2, node_id: 1, mode: 'AttachedSingle' },
    ] satisfies Placement[])
    expect(await cl.ok('storage-controller', 'status')).toMatch(
      new RegExp(`${defaultTenant} +2 +1 +AttachedSingle`),
    )

    // stop stops it last; the next start re-attaches again.
    const stopped = (await cl.ok('stop')).trim().split('\n')
    expect(stopped.at(-1)).toBe('storage controller stopped')
    await cl.ok('start')
    const again = JSON.parse(await cl.ok('storage-controller', 'status', '--json')) as {
      tenants: Placement[]
    }
    expect(again.tenants.map((t) => t.generation)).toEqual([3])

    // Each generation is in the controller's log, with the tenant and the node.
    const log = await readFile(path.join(cl.repo, 'storage_controller', 'storage_controller.log'), 'utf8')
    const issued = log
      .split('\n')
      .filter((l) => / INFO {2}generation issued /.test(l))
      .map((l) => /tenantId=(\w+) node=(\d+) generation=(\d+)/.exec(l)?.slice(1))
    expect(issued).toEqual([
      [defaultTenant, '1', '1'],
      [defaultTenant, '1', '2'],
      [defaultTenant, '1', '3'],
    ])
    // tenant create attaches the new tenant first: generation 1 at pageserver 1.
    const created = JSON.parse(await cl.ok('tenant', 'create', '--json')) as { tenant_id: string }
    const withNew = JSON.parse(await cl.ok('storage-controller', 'status', '--json')) as {
      tenants: Placement[]
    }
    expect(withNew.tenants.find((t) => t.tenant_id === created.tenant_id)).toEqual({
      tenant_id: created.tenant_id,
      generation: 1,
      node_id: 1,
      mode: 'AttachedSingle',
    })
    // Without the controller no tenant can be created: the pageserver would have no generation for it.
    expect(await cl.ok('storage-controller', 'stop')).toBe('storage controller stopped')
    const refused = await cl.zenith('tenant', 'create')
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stderr).toMatch(
      new RegExp(
        `the storage controller is not reachable at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`,
      ),
    )
    expect(JSON.parse(await cl.ok('tenant', 'list', '--json'))).toHaveLength(2)
    await cl.ok('storage-controller', 'start')

    const psLog = await readFile(path.join(cl.repo, 'pageserver', 'pageserver.log'), 'utf8')
    // The pageserver took the generation: its index went up as index_part.json-00000003.
    expect(psLog).toMatch(/index uploaded .*index_part\.json-00000003 /)
    expect(psLog).toContain(
      `re-attached at the storage controller node=1 tenants=${defaultTenant}:AttachedSingle@3\n`,
    )
  })
})
