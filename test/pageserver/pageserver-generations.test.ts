/**
 * The pageserver with a real storage controller (in this process, on a free loopback port): it does not
 * open its repository before re-attach has answered, it writes under the generation it got, and its
 * upload queues ask the controller before moving remote_consistent_lsn, which stops moving once another
 * attach made the generation stale.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { StorageController } from '../../src/control/storage-controller.js'
import { encodeKey } from '../../src/engine/key.js'
import type { LogFn } from '../../src/lib/log.js'
import { parseMetrics } from '../../src/lib/metrics.js'
import { formatLsn } from '../../src/postgres/lsn.js'
import { jsonRequest } from '../harness/http.js'
import { startTestPageserver, type TestPageserver } from '../harness/pageserver.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const KEY = encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: 0 })

async function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-ps-gen-'))
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const logged: { msg: string; fields?: Record<string, unknown> }[] = []
  const log: LogFn = (_level, msg, fields) => logged.push({ msg, fields })
  const startController = async () => {
    const sc = await StorageController.start(path.join(dir, 'sc'), {
      config: { listenHttpAddr: { host: '127.0.0.1', port }, logLevel: 'info' },
      log: () => {},
    })
    cleanups.push(() => sc.stop())
    return sc
  }
  const startPageserver = async () => {
    const s = await startTestPageserver(path.join(dir, 'ps'), log, {
      remoteStorage: { kind: 'local', localPath: path.join(dir, 'remote') },
      controlPlane: { api: `http://127.0.0.1:${port}/upcall/v1/`, nodeId: 1 },
    })
    cleanups.push(() => s.ps.stop())
    return s
  }
  return { logged, startController, startPageserver }
}

const validations = (sc: StorageController) =>
  parseMetrics(sc.metrics.render()).find((m) => m.labels.route === 'validate')?.value ?? 0

/** A record at `lsn`, flushed to a layer and uploaded with an index; the timeline's detail after. */
async function writeAndUpload(s: TestPageserver, tenantId: string, timelineId: string, lsn: number) {
  const tl = s.ps.timeline(tenantId, timelineId)
  tl.ingest([{ key: KEY, lsn, value: { kind: 'image', page: Buffer.alloc(8192, lsn & 0xff) } }], lsn)
  await tl.checkpoint()
  await tl.uploads!.flush()
  return (await jsonRequest(s.api, 'GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)).json
}

describe('pageserver generations from the storage controller', () => {
  it('waits for re-attach, advances remote_consistent_lsn while valid, and stops once stale', async () => {
    const { logged, startController, startPageserver } = await setup()
    // The controller comes up only after the pageserver began to start: it must wait, not make one up.
    const starting = startPageserver()
    await new Promise((r) => setTimeout(r, 400))
    expect(logged.some((l) => l.msg === 're-attach failed; retrying')).toBe(true)
    expect(logged.some((l) => l.msg === 'pageserver started')).toBe(false)
    const sc = await startController()
    const s = await starting

    const tenantId = 'abababababababababababababababab'
    const generation = sc.state.attach(tenantId, 1)
    const created = await jsonRequest(s.api, 'POST', '/v1/tenant', { new_tenant_id: tenantId, generation })
    expect(created.status).toBe(201)
    const tl = s.ps.tenant(tenantId).createTimeline(0x1000)

    const first = await writeAndUpload(s, tenantId, tl.timelineId, 0x1008)
    expect(first.remote_consistent_lsn_visible).toBe(formatLsn(0x1008))
    const asked = validations(sc)
    expect(asked).toBeGreaterThan(0)

    // Another pageserver is attached with the next generation: this one's is stale from now on.
    sc.state.attach(tenantId, 2, 'AttachedMulti')
    const second = await writeAndUpload(s, tenantId, tl.timelineId, 0x2008)
    expect(second.disk_consistent_lsn).toBe(formatLsn(0x2008))
    expect(second.remote_consistent_lsn_visible).toBe(formatLsn(0x1008))
    expect(validations(sc)).toBeGreaterThan(asked)
    expect(logged.some((l) => l.msg.startsWith('generation is stale'))).toBe(true)
  })

  it('opens its repository at the generation re-attach issued, and uploads under it', async () => {
    const { logged, startController, startPageserver } = await setup()
    const sc = await startController()
    const tenantId = 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd'
    let s = await startPageserver()
    await jsonRequest(s.api, 'POST', '/v1/tenant', {
      new_tenant_id: tenantId,
      generation: sc.state.attach(tenantId, 1),
    })
    const tl = s.ps.tenant(tenantId).createTimeline(0x1000)
    await writeAndUpload(s, tenantId, tl.timelineId, 0x1008)
    await s.ps.stop()

    s = await startPageserver()
    expect(
      logged.filter((l) => l.msg === 're-attached at the storage controller').at(-1)?.fields?.tenants,
    ).toBe(`${tenantId}:AttachedSingle@2`)
    const detail = await writeAndUpload(s, tenantId, tl.timelineId, 0x2008)
    expect(detail.remote_consistent_lsn_visible).toBe(formatLsn(0x2008))
    const keys = logged.filter((l) => l.msg === 'index uploaded').map((l) => String(l.fields?.key).slice(-8))
    expect(keys.at(-1)).toBe('00000002')
    expect(keys[0]).toBe('00000001')
  })

  it('takes the generation of POST /v1/tenant, and refuses one that is not a generation', async () => {
    const { startController, startPageserver } = await setup()
    await startController()
    const s = await startPageserver()
    const r = await jsonRequest(s.api, 'POST', '/v1/tenant', { generation: 'one' })
    expect(r).toMatchObject({
      status: 400,
      json: { msg: 'generation must be an integer in 1 .. 4294967295, got "one"' },
    })
    // A generation given is the tenant's, as tenant listings say.
    const id = 'efefefefefefefefefefefefefefefef'
    expect(
      (await jsonRequest(s.api, 'POST', '/v1/tenant', { new_tenant_id: id, generation: 7 })).status,
    ).toBe(201)
    const listed = (await jsonRequest(s.api, 'GET', '/v1/tenant')).json as {
      id: string
      generation: number
    }[]
    expect(listed.find((t) => t.id === id)?.generation).toBe(7)
  })
})
