/**
 * The storage controller over real HTTP on a free loopback port: the upcalls, the control API, the
 * 400s for bad bodies, its log of every generation it issues, and its state across a restart.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { clusterStatus, startSteps, stopSteps } from '../../src/control/cluster.js'
import { pageserverConfigFile, pageserverDir } from '../../src/control/layout.js'
import { freePort } from '../../src/control/process.js'
import { newClusterConfig, saveClusterConfig } from '../../src/control/repo-config.js'
import { StorageController } from '../../src/control/storage-controller.js'
import { StorageControllerClient } from '../../src/control/storage-controller-client.js'
import {
  defaultStorageControllerConfig,
  saveStorageControllerConfig,
} from '../../src/control/storage-controller-config.js'
import {
  storageControllerConfigFile,
  storageControllerDir,
} from '../../src/control/storage-controller-process.js'
import { DEFAULT_PAGESERVER_CONFIG, savePageserverConfig } from '../../src/pageserver/config.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-sc-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const T1 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const T2 = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'

const running: StorageController[] = []
afterEach(async () => {
  for (const sc of running.splice(0)) await sc.stop()
})

async function start(dir = mkdtempSync(path.join(root, 'sc-'))) {
  const port = await freePort()
  const logged: { msg: string; fields?: Record<string, unknown> }[] = []
  const log = (_level: string, msg: string, fields?: Record<string, unknown>) => logged.push({ msg, fields })
  const sc = await StorageController.start(dir, {
    config: { listenHttpAddr: { host: '127.0.0.1', port }, logLevel: 'info' },
    log,
  })
  running.push(sc)
  const base = `http://127.0.0.1:${port}`
  const post = async (p: string, body: unknown, method = 'POST') => {
    const res = await fetch(base + p, {
      method,
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { status: res.status, json: await res.json() }
  }
  return { dir, sc, logged, post, client: new StorageControllerClient({ host: '127.0.0.1', port }) }
}

describe('storage controller HTTP API', () => {
  it('attach issues generations, re-attach bumps them, validate says stale after another attach', async () => {
    const { client, post, logged } = await start()
    expect(await client.attach(T1, 1)).toEqual({
      tenant_id: T1,
      generation: 1,
      node_id: 1,
      mode: 'AttachedSingle',
    })
    await client.attach(T2, 2, 'AttachedMulti')

    expect(await post('/upcall/v1/re-attach', { node_id: 1 })).toEqual({
      status: 200,
      json: { tenants: [{ id: T1, gen: 2, mode: 'AttachedSingle' }] },
    })
    expect((await post('/upcall/v1/validate', { tenants: [{ id: T1, gen: 2 }] })).json).toEqual({
      tenants: [{ id: T1, valid: true }],
    })
    // Another attach (a migration to node 2): generation 2 is stale from now on.
    expect((await client.attach(T1, 2, 'AttachedMulti')).generation).toBe(3)
    expect(
      (
        await post('/upcall/v1/validate', {
          tenants: [
            { id: T1, gen: 2 },
            { id: T1, gen: 3 },
            { id: T2, gen: 1 },
            { id: 'cccccccccccccccccccccccccccccccc', gen: 1 },
          ],
        })
      ).json,
    ).toEqual({
      tenants: [
        { id: T1, valid: false },
        { id: T1, valid: true },
        { id: T2, valid: true },
        { id: 'cccccccccccccccccccccccccccccccc', valid: false },
      ],
    })

    expect(await client.setMode(T1, 2, 'AttachedSingle')).toEqual({
      tenant_id: T1,
      generation: 3,
      node_id: 2,
      mode: 'AttachedSingle',
    })
    await client.detach(T2)
    expect(await client.tenants()).toEqual([
      { tenant_id: T1, generation: 3, node_id: 2, mode: 'AttachedSingle' },
    ])

    // Every generation issued is in the log with its tenant and node.
    const issued = logged
      .filter((l) => l.msg === 'generation issued')
      .map((l) => [l.fields?.tenantId, l.fields?.node, l.fields?.generation])
    expect(issued).toEqual([
      [T1, 1, 1],
      [T2, 2, 1],
      [T1, 1, 2],
      [T1, 2, 3],
    ])
  })

  it('answers bad bodies with 400 and a one-line message, unknown tenants with 404, a wrong node with 409', async () => {
    const { post, client } = await start()
    const cases: [string, unknown, string, string?][] = [
      ['/upcall/v1/re-attach', {}, 'node_id must be a positive integer, got undefined'],
      ['/upcall/v1/re-attach', { node_id: 'one' }, 'node_id must be a positive integer, got "one"'],
      ['/upcall/v1/re-attach', '{"node_id":', 'malformed JSON body: '],
      ['/upcall/v1/validate', { tenants: 'all' }, 'tenants must be a list of {"id", "gen"}'],
      [
        '/upcall/v1/validate',
        { tenants: [{ id: T1, gen: 0 }] },
        'tenants[0].gen must be a positive integer, got 0',
      ],
      [
        '/upcall/v1/validate',
        { tenants: [{ id: 'x', gen: 1 }] },
        'invalid tenant id "x": expected 32 hex digits (16 bytes)',
      ],
      [
        `/control/v1/tenant/${T1}/attach`,
        { node_id: 1, mode: 'Detached' },
        'mode must be one of AttachedSingle, AttachedMulti, AttachedStale, Secondary, got "Detached"',
      ],
      [
        '/control/v1/tenant/nope/attach',
        { node_id: 1 },
        'invalid tenant id "nope": expected 32 hex digits (16 bytes)',
      ],
      [
        `/control/v1/tenant/${T1}/mode`,
        { node_id: 1 },
        'mode must be one of AttachedSingle, AttachedMulti, AttachedStale, Secondary, got undefined',
        'PUT',
      ],
    ]
    for (const [p, body, msg, method] of cases) {
      const r = await post(p, body, method)
      expect({ p, status: r.status }).toEqual({ p, status: 400 })
      expect(r.json.msg).toContain(msg)
      expect(r.json.msg).not.toContain('\n')
    }
    expect(await client.tenants()).toEqual([])
    expect(
      (await post(`/control/v1/tenant/${T1}/mode`, { node_id: 1, mode: 'AttachedStale' }, 'PUT')).status,
    ).toBe(404)
    await client.attach(T1, 1)
    const wrongNode = await post(
      `/control/v1/tenant/${T1}/mode`,
      { node_id: 2, mode: 'AttachedStale' },
      'PUT',
    )
    expect(wrongNode).toEqual({
      status: 409,
      json: { msg: `tenant ${T1} is attached to pageserver 1, not 2: only its own node's mode can change` },
    })
    await expect(client.detach(T2)).rejects.toThrow(`tenant ${T2} is not attached anywhere`)
  })

  it('keeps its state across a restart: the next generation follows the last one issued', async () => {
    const first = await start()
    await first.client.attach(T1, 1)
    await first.post('/upcall/v1/re-attach', { node_id: 1 })
    await running.pop()!.stop()
    const second = await start(first.dir)
    expect((await second.post('/upcall/v1/re-attach', { node_id: 1 })).json).toEqual({
      tenants: [{ id: T1, gen: 3, mode: 'AttachedSingle' }],
    })
  })
})

describe('a repo dir made before the storage controller', () => {
  it('starts, stops and shows its cluster without one', async () => {
    const repo = mkdtempSync(path.join(root, 'old-repo-'))
    mkdirSync(pageserverDir(repo, 1))
    savePageserverConfig(pageserverConfigFile(repo, 1), DEFAULT_PAGESERVER_CONFIG)
    saveClusterConfig(repo, newClusterConfig())
    expect(startSteps(repo).map((s) => s.title)).toEqual(['start the pageserver'])
    expect((await stopSteps(repo)).map((s) => s.title)).toEqual(['stop the pageserver'])
    expect((await clusterStatus(repo)).storage_controller).toBeNull()

    mkdirSync(storageControllerDir(repo))
    saveStorageControllerConfig(
      storageControllerConfigFile(repo),
      defaultStorageControllerConfig(await freePort()),
    )
    expect(startSteps(repo).map((s) => s.title)).toEqual([
      'start the storage controller',
      'start the pageserver',
    ])
    expect((await stopSteps(repo)).map((s) => s.title)).toEqual([
      'stop the pageserver',
      'stop the storage controller',
    ])
    expect((await clusterStatus(repo)).storage_controller).toMatchObject({ state: 'stopped', tenants: [] })
  })
})
