/**
 * The pageserver's control-plane client against a real storage controller on a free loopback port:
 * re-attach retries until the controller answers, and concurrent validations go out in one request
 * (counted by the controller's own metrics), each caller getting its own answer.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { StorageController } from '../../src/control/storage-controller.js'
import { StorageControllerClient } from '../../src/control/storage-controller-client.js'
import { parseMetrics } from '../../src/lib/metrics.js'
import { ControlPlaneClient } from '../../src/pageserver/control-plane-client.js'

const CHILD = fileURLToPath(new URL('../harness/storage-controller-child.ts', import.meta.url))
const root = mkdtempSync(path.join(tmpdir(), 'zenith-cpclient-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const T1 = '11111111111111111111111111111111'
const T2 = '22222222222222222222222222222222'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function controllerOn(port: number): Promise<StorageController> {
  const sc = await StorageController.start(mkdtempSync(path.join(root, 'sc-')), {
    config: { listenHttpAddr: { host: '127.0.0.1', port }, logLevel: 'info' },
    log: () => {},
  })
  cleanups.push(() => sc.stop())
  return sc
}

function clientOf(port: number, logged: string[] = []): ControlPlaneClient {
  const c = new ControlPlaneClient(
    { api: `http://127.0.0.1:${port}/upcall/v1/`, nodeId: 1 },
    (_level, msg, fields) => logged.push(`${msg} ${fields?.attempt ?? ''}`),
    { backoff: { baseMs: 20, maxMs: 100 } },
  )
  cleanups.push(() => c.close())
  return c
}

const requestsOf = (sc: StorageController, route: string): number =>
  parseMetrics(sc.metrics.render()).find(
    (m) => m.name === 'storage_controller_http_requests_total' && m.labels.route === route,
  )?.value ?? 0

describe('ControlPlaneClient', () => {
  it('re-attach waits for a controller that is not up yet, logging each failure, and gets the bumped generations', async () => {
    const port = await freePort()
    const logged: string[] = []
    const client = clientOf(port, logged)
    const answer = client.reAttach()
    await new Promise((r) => setTimeout(r, 300))
    expect(logged.filter((l) => l.startsWith('re-attach failed; retrying')).length).toBeGreaterThanOrEqual(2)
    const sc = await controllerOn(port)
    sc.state.attach(T1, 1)
    sc.state.attach(T2, 2)
    expect(await answer).toEqual(new Map([[T1, { generation: 2, mode: 'AttachedSingle' }]]))
  })

  it('close() ends a re-attach that is still retrying', async () => {
    const client = clientOf(await freePort())
    const answer = client.reAttach()
    client.close()
    await expect(answer).rejects.toThrow('stopped while waiting for re-attach')
  })

  it('sends concurrent validations in one request, each caller getting its own answer', async () => {
    const port = await freePort()
    const sc = await controllerOn(port)
    sc.state.attach(T1, 1)
    sc.state.attach(T1, 1)
    sc.state.attach(T2, 1)
    const client = clientOf(port)
    const asked = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0 ? ([T1, 1 + (i % 4) / 2] as const) : ([T2, 1] as const),
    )
    const answers = await Promise.all(asked.map(([id, gen]) => client.validate(id, gen)))
    expect(answers).toEqual(asked.map(([id, gen]) => (id === T1 ? gen === 2 : true)))
    expect(requestsOf(sc, 'validate')).toBe(1)
  })

  it('holds calls made while a request is in flight, and sends them together once it is answered', async () => {
    // The controller as its own process, so that SIGSTOP can hold a request in flight for as long as
    // the test needs.
    const port = await freePort()
    const child = execa(
      'node',
      ['--import', 'tsx', CHILD, mkdtempSync(path.join(root, 'sc-')), String(port)],
      {
        reject: false,
      },
    )
    cleanups.push(async () => {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
      await child
    })
    const pid = child.pid!
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
      void child.then((r) => reject(new Error(`the controller exited: ${r.stderr}`)))
    })
    const api = new StorageControllerClient({ host: '127.0.0.1', port })
    await api.attach(T1, 1)
    const client = clientOf(port)
    process.kill(pid, 'SIGSTOP')
    const first = client.validate(T1, 1)
    // Three waves, each well past the batching delay: without the in-flight rule, three more requests.
    const later: Promise<boolean>[] = []
    for (let wave = 0; wave < 3; wave++) {
      await new Promise((r) => setTimeout(r, 50))
      later.push(client.validate(T1, 1), client.validate(T1, 2))
    }
    process.kill(pid, 'SIGCONT')
    expect(await first).toBe(true)
    expect(await Promise.all(later)).toEqual([true, false, true, false, true, false])
    const metrics = parseMetrics(await api.requestText('/metrics'))
    const validates = metrics.find(
      (m) => m.name === 'storage_controller_http_requests_total' && m.labels.route === 'validate',
    )?.value
    expect(validates).toBe(2)
  })

  it('fails every call of a batch the controller does not answer', async () => {
    const client = clientOf(await freePort())
    const calls = [client.validate(T1, 1), client.validate(T2, 1)]
    for (const c of calls)
      await expect(c).rejects.toThrow(
        /the storage controller is not reachable at http:\/\/127\.0\.0\.1:\d+\/upcall\/v1\/validate/,
      )
  })
})
