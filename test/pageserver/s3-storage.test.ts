/** The S3 backend against a real S3-compatible server (moto_server on a free loopback port). */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { RemoteStorageError } from '../../src/engine/remote-storage.js'
import { S3Storage } from '../../src/pageserver/s3-storage.js'
import { remoteStorageContract } from '../engine/remote-storage-contract.js'
import { MOTO_CREDENTIALS, MOTO_ENV, type Moto, startMoto } from '../harness/moto.js'
import { startTestPageserver } from '../harness/pageserver.js'

let moto: Moto
beforeAll(async () => {
  moto = await startMoto()
}, 40_000)
afterAll(async () => {
  await moto?.stop()
})

remoteStorageContract('S3 (moto)', async () => {
  const storage = new S3Storage({ ...moto.s3, prefix: 'contract' })
  return { storage, close: async () => storage.close() }
})

describe('S3Storage', () => {
  const open = (prefix: string) => new S3Storage({ ...moto.s3, prefix })

  it('keeps prefixes apart: two stores in one bucket do not see each other', async () => {
    const a = open('cluster-a')
    const ab = open('cluster-a/b')
    const b = open('/cluster-ab/')
    try {
      await a.put('tenants/t/x', Buffer.from('a'))
      await ab.put('tenants/t/x', Buffer.from('ab'))
      await b.put('tenants/t/x', Buffer.from('b'))
      expect(b.location).toBe(`s3://${moto.bucket}/cluster-ab`)
      expect((await a.get('tenants/t/x')).toString()).toBe('a')
      expect((await ab.get('tenants/t/x')).toString()).toBe('ab')
      expect((await b.get('tenants/t/x')).toString()).toBe('b')
      // cluster-a sees its own objects and those under its sub-prefix, never cluster-ab's.
      expect((await a.list('tenants/')).map((o) => o.key)).toEqual(['tenants/t/x'])
      expect((await a.list('')).map((o) => o.key)).toEqual(['b/tenants/t/x', 'tenants/t/x'])
      expect((await b.list('')).map((o) => o.key)).toEqual(['tenants/t/x'])
      await b.delete(['tenants/t/x'])
      expect((await a.get('tenants/t/x')).toString()).toBe('a')
      expect(await b.list('')).toEqual([])
    } finally {
      for (const s of [a, ab, b]) s.close()
    }
  })

  it('lists more than one page of objects (ListObjectsV2 gives 1000 at most) and deletes them in batches', async () => {
    const s = open('many')
    try {
      const keys = Array.from(
        { length: 1100 },
        (_, i) => `tenants/t/timelines/l/obj-${String(i).padStart(5, '0')}`,
      )
      for (let i = 0; i < keys.length; i += 50)
        await Promise.all(keys.slice(i, i + 50).map((k, j) => s.put(k, Buffer.alloc((i + j) % 7))))
      const listed = await s.list('tenants/t/')
      expect(listed.length).toBe(1100)
      expect(listed.map((o) => o.key)).toEqual(keys)
      expect(listed[1099]).toEqual({ key: keys[1099], size: 1099 % 7 })
      await s.delete(keys.slice(0, 1050))
      expect((await s.list('tenants/')).map((o) => o.key)).toEqual(keys.slice(1050))
    } finally {
      s.close()
    }
  }, 60_000)

  it('says an unreachable endpoint is unavailable, naming the bucket, the key and the cause, within a bounded time', async () => {
    // A port nobody listens on: connections are refused at once, and each attempt is retried.
    const port = await freePort()
    const s = new S3Storage({
      bucket: moto.bucket,
      prefix: 'p',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: MOTO_CREDENTIALS,
      maxAttempts: 2,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 2000,
    })
    try {
      const started = Date.now()
      for (const op of [
        () => s.get('tenants/x'),
        () => s.put('tenants/x', Buffer.alloc(1)),
        () => s.check(),
      ]) {
        const err = await op().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(err).toBeInstanceOf(RemoteStorageError)
        expect((err as RemoteStorageError).kind).toBe('unavailable')
        expect((err as Error).message).toMatch(
          new RegExp(`s3://${moto.bucket}/p.* at http://127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`),
        )
      }
      expect((await s.get('tenants/x').catch((e: Error) => e.message)) as string).toContain(
        `s3://${moto.bucket}/p/tenants/x`,
      )
      expect(Date.now() - started).toBeLessThan(10_000)
    } finally {
      s.close()
    }
  })

  it('says a missing bucket is not found, with a hint', async () => {
    const s = new S3Storage({ ...moto.s3, bucket: 'no-such-bucket', prefix: '' })
    try {
      const err = await s.check().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(RemoteStorageError)
      expect((err as RemoteStorageError).kind).toBe('not_found')
      expect((err as RemoteStorageError).hint).toMatch(/create bucket no-such-bucket/)
      await expect(s.put('x', Buffer.alloc(1))).rejects.toMatchObject({ kind: 'not_found' })
    } finally {
      s.close()
    }
  })
})

describe('the pageserver with S3 remote storage', () => {
  /** Starts a pageserver on `endpoint` with moto's credentials in the environment, as the SDK's chain reads them. */
  async function startOn(endpoint: string) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-ps-s3-'))
    const saved = Object.fromEntries(Object.keys(MOTO_ENV).map((k) => [k, process.env[k]]))
    Object.assign(process.env, MOTO_ENV)
    const logged: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
    try {
      const t = await startTestPageserver(dir, (level, msg, fields) => logged.push({ level, msg, fields }), {
        remoteStorage: { kind: 's3', bucket: moto.bucket, prefix: 'ps', endpoint },
      })
      return { ...t, dir, logged, saved }
    } catch (err) {
      await rm(dir, { recursive: true, force: true })
      throw err
    }
  }
  async function stop(t: Awaited<ReturnType<typeof startOn>>) {
    await t.ps.stop()
    for (const [k, v] of Object.entries(t.saved))
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    await rm(t.dir, { recursive: true, force: true })
  }

  it('opens the bucket at start and says nothing when it answers', async () => {
    const t = await startOn(moto.endpoint)
    try {
      expect(t.ps.remoteStorage?.location).toBe(`s3://${moto.bucket}/ps`)
      await expect(t.ps.remoteStorage?.check()).resolves.toBeUndefined()
      expect(t.logged.find((l) => l.msg === 'pageserver started')?.fields?.remoteStorage).toBe(
        `s3://${moto.bucket}/ps`,
      )
    } finally {
      await stop(t)
    }
    expect(t.logged.filter((l) => l.level === 'warn')).toEqual([])
  })

  it('starts when the bucket cannot be reached, with a warning naming it and why', async () => {
    const port = await freePort()
    const t = await startOn(`http://127.0.0.1:${port}`)
    try {
      expect((await fetch(`${t.api}/v1/status`)).status).toBe(200)
    } finally {
      await stop(t)
    }
    const warning = t.logged.find((l) => l.level === 'warn')
    expect(warning?.msg).toBe('remote storage is not usable now; uploads will retry')
    expect(warning?.fields?.location).toBe(`s3://${moto.bucket}/ps`)
    expect(String(warning?.fields?.error)).toMatch(/HeadBucket .* failed: .*ECONNREFUSED/)
  }, 30_000)
})
