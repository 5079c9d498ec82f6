import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeKey } from '../../src/engine/key.js'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { formatLsn } from '../../src/postgres/lsn.js'
import { jsonRequest } from '../harness/http.js'
import { startTestPageserver, type TestPageserver } from '../harness/pageserver.js'

/** Local-directory storage whose layer uploads wait until `release` is called. */
class HeldStorage extends LocalFsStorage {
  release: () => void = () => {}
  private readonly gate = new Promise<void>((r) => (this.release = r))

  override async putFile(key: string, localPath: string): Promise<void> {
    await this.gate
    await super.putFile(key, localPath)
  }
}

const dirs: string[] = []
const servers: TestPageserver[] = []
const storages: HeldStorage[] = []
afterEach(async () => {
  for (const s of storages.splice(0)) s.release()
  for (const s of servers.splice(0)) await s.ps.stop()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('pageserver with remote storage', () => {
  it('reports remote_consistent_lsn from uploaded indexes, not disk_consistent_lsn', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-ps-remote-'))
    dirs.push(dir)
    const storage = new HeldStorage(path.join(dir, 'remote'))
    storages.push(storage)
    const server = await startTestPageserver(path.join(dir, 'pageserver'), () => {}, {}, { storage })
    servers.push(server)
    // Data straight into the engine: what matters here is where it is, not how it came.
    const tenant = server.ps.repo.createTenant()
    const tl = tenant.createTimeline(0x1000)
    const key = encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: 0 })
    tl.ingest([{ key, lsn: 0x1008, value: { kind: 'image', page: Buffer.alloc(8192, 7) } }], 0x1008)
    await tl.checkpoint()
    const detail = async () =>
      (await jsonRequest(server.api, 'GET', `/v1/tenant/${tenant.tenantId}/timeline/${tl.timelineId}`)).json
    const held = await detail()
    expect(held.disk_consistent_lsn).toBe(formatLsn(0x1008))
    expect(held.remote_consistent_lsn).toBe('0/0')
    expect(held.remote_consistent_lsn_visible).toBe('0/0')

    storage.release()
    await tl.uploads!.flush()
    const done = await detail()
    expect(done.remote_consistent_lsn).toBe(formatLsn(0x1008))
    expect(done.remote_consistent_lsn_visible).toBe(formatLsn(0x1008))
  })
})
