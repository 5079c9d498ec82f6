/**
 * The contract of remote storage backends (src/engine/remote-storage.ts), as a suite any backend's test
 * runs against a real store: a directory, or a real S3-compatible server.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RemoteNotFoundError, type RemoteStorage } from '../../src/engine/remote-storage.js'

export function remoteStorageContract(
  name: string,
  open: () => Promise<{ storage: RemoteStorage; close: () => Promise<void> }>,
): void {
  describe(`remote storage contract: ${name}`, () => {
    let storage: RemoteStorage
    let close: (() => Promise<void>) | undefined
    let scratch: string
    beforeAll(async () => {
      ;({ storage, close } = await open())
      scratch = await mkdtemp(path.join(os.tmpdir(), 'zenith-remote-contract-'))
    })
    afterAll(async () => {
      await close?.()
      await rm(scratch, { recursive: true, force: true })
    })

    it('puts and gets an object, and a put replaces it whole', async () => {
      await storage.put('tenants/a/timelines/b/index_part.json-00000001', Buffer.from('{"v":1}'))
      expect((await storage.get('tenants/a/timelines/b/index_part.json-00000001')).toString()).toBe('{"v":1}')
      await storage.put('tenants/a/timelines/b/index_part.json-00000001', Buffer.from('{"v":2}'))
      expect((await storage.get('tenants/a/timelines/b/index_part.json-00000001')).toString()).toBe('{"v":2}')
    })

    it('streams files up and down, byte for byte', async () => {
      // Larger than one S3 part and not a multiple of any block size.
      const body = Buffer.alloc(9 * 1024 * 1024 + 123)
      for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i)
      const src = path.join(scratch, 'layer')
      await writeFile(src, body)
      await storage.putFile('tenants/a/timelines/b/layer-00000001', src)
      const dst = path.join(scratch, 'downloaded')
      await storage.getFile('tenants/a/timelines/b/layer-00000001', dst)
      expect((await readFile(dst)).equals(body)).toBe(true)
    })

    it('lists by prefix, sorted, with sizes, and nothing else', async () => {
      await storage.put('tenants/a/timelines/c/x-00000002', Buffer.alloc(5))
      await storage.put('tenants/a/timelines/c/x-00000001', Buffer.alloc(3))
      await storage.put('tenants/a/timelines/cc/y', Buffer.alloc(1))
      expect(await storage.list('tenants/a/timelines/c/')).toEqual([
        { key: 'tenants/a/timelines/c/x-00000001', size: 3 },
        { key: 'tenants/a/timelines/c/x-00000002', size: 5 },
      ])
      expect((await storage.list('tenants/a/timelines/c')).map((o) => o.key)).toEqual([
        'tenants/a/timelines/c/x-00000001',
        'tenants/a/timelines/c/x-00000002',
        'tenants/a/timelines/cc/y',
      ])
      expect((await storage.list('tenants/a/timelines/b/index_part.json-')).map((o) => o.key)).toEqual([
        'tenants/a/timelines/b/index_part.json-00000001',
      ])
      expect(await storage.list('tenants/none/')).toEqual([])
    })

    it('says a missing object is not found, and deleting one is not an error', async () => {
      await expect(storage.get('tenants/a/missing')).rejects.toBeInstanceOf(RemoteNotFoundError)
      await expect(storage.getFile('tenants/a/missing', path.join(scratch, 'm'))).rejects.toBeInstanceOf(
        RemoteNotFoundError,
      )
      await storage.delete(['tenants/a/timelines/c/x-00000001', 'tenants/a/missing'])
      expect((await storage.list('tenants/a/timelines/c/')).map((o) => o.key)).toEqual([
        'tenants/a/timelines/c/x-00000002',
      ])
    })

    it('refuses keys that are not relative paths', async () => {
      for (const bad of ['', '/abs', 'a//b', 'a/../b', 'a/./b'])
        await expect(storage.put(bad, Buffer.alloc(1)), bad).rejects.toThrow(/invalid remote key/)
    })
  })
}
