import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { afterEach, describe, expect, it } from 'vitest'
import { ZenithError } from '../../src/lib/errors.js'
import {
  DEFAULT_PAGESERVER_CONFIG,
  loadPageserverConfig,
  PageserverConfigError,
  parsePageserverConfig,
  renderPageserverConfig,
} from '../../src/pageserver/config.js'
import {
  openRemoteStorage,
  remoteStorageFromArgs,
  remoteStorageLocation,
} from '../../src/pageserver/remote-storage-config.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('pageserver.toml log_level', () => {
  it('defaults to info and takes each level', () => {
    expect(parsePageserverConfig({}).logLevel).toBe('info')
    for (const level of ['debug', 'info', 'warn', 'error'])
      expect(parsePageserverConfig({ log_level: level }).logLevel).toBe(level)
  })

  it('is written by the renderer and read back', () => {
    const text = renderPageserverConfig({ ...DEFAULT_PAGESERVER_CONFIG, logLevel: 'debug' })
    expect(text).toContain('log_level = "debug"\n')
    expect(parsePageserverConfig(parseToml(text)).logLevel).toBe('debug')
  })

  it('refuses a bad value in one line naming the setting, the file and the valid values', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-pscfg-'))
    dirs.push(dir)
    const file = path.join(dir, 'pageserver.toml')
    for (const [value, shown] of [
      ['"verbose"', '"verbose"'],
      ['"INFO"', '"INFO"'],
      ['3', '3'],
    ]) {
      writeFileSync(file, `log_level = ${value}\n`)
      let err: unknown
      try {
        loadPageserverConfig(file)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(PageserverConfigError)
      expect(err).toBeInstanceOf(ZenithError)
      expect((err as ZenithError).kind).toBe('user_input')
      expect((err as Error).message).toBe(
        `${file}: log_level must be one of debug, info, warn, error, got ${shown}`,
      )
    }
  })
})

describe('pageserver.toml remote_storage', () => {
  const base = '/srv/zenith/pageserver'

  it('takes a directory, relative to the directory of pageserver.toml', () => {
    expect(parsePageserverConfig({}).remoteStorage).toBeNull()
    expect(
      parsePageserverConfig({ remote_storage: { local_path: '../remote_storage' } }, base).remoteStorage,
    ).toEqual({
      kind: 'local',
      localPath: '/srv/zenith/remote_storage',
    })
    expect(parsePageserverConfig({ remote_storage: { local_path: '/abs/rs' } }, base).remoteStorage).toEqual({
      kind: 'local',
      localPath: '/abs/rs',
    })
  })

  it('takes a bucket with a prefix, a region and an endpoint, each but the bucket optional', () => {
    expect(
      parsePageserverConfig({
        remote_storage: {
          bucket: 'my-bucket.1',
          prefix: '/zenith/main/',
          region: 'eu-west-1',
          endpoint: 'http://127.0.0.1:5000/',
        },
      }).remoteStorage,
    ).toEqual({
      kind: 's3',
      bucket: 'my-bucket.1',
      prefix: 'zenith/main',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:5000',
    })
    expect(parsePageserverConfig({ remote_storage: { bucket: 'b12' } }).remoteStorage).toEqual({
      kind: 's3',
      bucket: 'b12',
      prefix: '',
    })
  })

  it('is written by the renderer, before [tenant_config], and read back', () => {
    for (const remoteStorage of [
      { kind: 'local', localPath: '/srv/zenith/remote_storage' },
      { kind: 's3', bucket: 'b12', prefix: 'a/b', region: 'us-east-1', endpoint: 'https://s3.example.com' },
      { kind: 's3', bucket: 'b12', prefix: '' },
    ] as const) {
      const text = renderPageserverConfig({
        ...DEFAULT_PAGESERVER_CONFIG,
        remoteStorage,
        tenantDefaults: { gc_horizon: 1024 },
      })
      expect(text.indexOf('remote_storage = {')).toBeLessThan(text.indexOf('[tenant_config]'))
      expect(parsePageserverConfig(parseToml(text)).remoteStorage).toEqual(remoteStorage)
    }
    expect(renderPageserverConfig(DEFAULT_PAGESERVER_CONFIG)).not.toContain('remote_storage')
  })

  it('resolves a relative local_path against the file, and names the file in errors', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-pscfg-'))
    dirs.push(dir)
    const file = path.join(dir, 'pageserver.toml')
    writeFileSync(file, 'remote_storage = { local_path = "rs" }\n')
    expect(loadPageserverConfig(file).remoteStorage).toEqual({
      kind: 'local',
      localPath: path.join(dir, 'rs'),
    })
    writeFileSync(file, 'remote_storage = { bucket = "Bad_Bucket" }\n')
    expect(() => loadPageserverConfig(file)).toThrow(
      `${file}: remote_storage.bucket "Bad_Bucket" is not an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    )
  })

  it('refuses bad values in one line naming what is wrong and what is valid', () => {
    const forms =
      '{ local_path = "DIR" } or { bucket = "NAME", prefix = "P", region = "R", endpoint = "URL" }'
    const cases: [unknown, string][] = [
      ['/dir', `remote_storage must be a table, ${forms}`],
      [{}, `remote_storage needs local_path or bucket: ${forms}`],
      [{ path: '/x' }, `remote_storage: unknown setting "path"; ${forms}`],
      [
        { local_path: '/x', bucket: 'b12' },
        'remote_storage takes local_path or a bucket with its settings, not both (bucket is given with local_path)',
      ],
      [{ local_path: '' }, 'remote_storage.local_path must be a non-empty string, got ""'],
      [{ bucket: 5 }, 'remote_storage.bucket must be a non-empty string, got 5'],
      [{ bucket: 'ab' }, 'remote_storage.bucket "ab" is not an S3 bucket name'],
      [{ bucket: 'a..b' }, 'remote_storage.bucket "a..b" is not an S3 bucket name'],
      [
        { bucket: 'b12', prefix: 'a//b' },
        'remote_storage.prefix "a//b" is not a key prefix: parts separated by single slashes, none of them . or ..',
      ],
      [{ bucket: 'b12', prefix: 'a/../b' }, 'remote_storage.prefix "a/../b" is not a key prefix'],
      [
        { bucket: 'b12', region: 'EU West' },
        'remote_storage.region "EU West" is not an AWS region name (lowercase letters, digits and hyphens, like us-east-1)',
      ],
      [
        { bucket: 'b12', endpoint: '127.0.0.1:5000' },
        'remote_storage.endpoint "127.0.0.1:5000" is not an http:// or https:// URL of an S3-compatible server',
      ],
      [{ bucket: 'b12', endpoint: 'ftp://h' }, 'remote_storage.endpoint "ftp://h" is not an http://'],
    ]
    for (const [value, message] of cases) {
      let err: unknown
      try {
        parsePageserverConfig({ remote_storage: value })
      } catch (e) {
        err = e
      }
      expect(err, JSON.stringify(value)).toBeInstanceOf(ZenithError)
      expect((err as ZenithError).kind).toBe('user_input')
      expect((err as Error).message).toContain(message)
      expect((err as Error).message).not.toContain('\n')
    }
  })
})

describe('zenith init --remote-storage', () => {
  it('takes a directory (relative to the working directory) or s3://bucket/prefix with endpoint and region', () => {
    expect(remoteStorageFromArgs('rs', { cwd: '/home/u' })).toEqual({
      kind: 'local',
      localPath: '/home/u/rs',
    })
    expect(
      remoteStorageFromArgs('s3://b12/zenith/main/', {
        cwd: '/',
        s3Endpoint: 'http://127.0.0.1:5000',
        s3Region: 'us-east-1',
      }),
    ).toEqual({
      kind: 's3',
      bucket: 'b12',
      prefix: 'zenith/main',
      endpoint: 'http://127.0.0.1:5000',
      region: 'us-east-1',
    })
    expect(remoteStorageFromArgs('s3://b12', { cwd: '/' })).toEqual({ kind: 's3', bucket: 'b12', prefix: '' })
  })

  it('refuses what is neither, and S3 flags with a directory', () => {
    expect(() => remoteStorageFromArgs('gs://b12/p', { cwd: '/' })).toThrow(
      '--remote-storage "gs://b12/p" is neither a directory nor s3://bucket/prefix',
    )
    expect(() => remoteStorageFromArgs('s3:///p', { cwd: '/' })).toThrow(
      'the bucket of --remote-storage "" is not an S3 bucket name',
    )
    expect(() => remoteStorageFromArgs('/rs', { cwd: '/', s3Region: 'us-east-1' })).toThrow(
      '--s3-endpoint and --s3-region apply to --remote-storage s3://bucket/prefix, not to the directory /rs',
    )
    expect(() => remoteStorageFromArgs('s3://b12/p', { cwd: '/', s3Endpoint: 'localhost:5000' })).toThrow(
      '--s3-endpoint "localhost:5000" is not an http:// or https:// URL',
    )
  })
})

describe('openRemoteStorage', () => {
  it('opens a directory that check() creates, and a bucket by its location', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-pscfg-'))
    dirs.push(dir)
    const local = await openRemoteStorage({ kind: 'local', localPath: path.join(dir, 'a', 'rs') })
    expect(local.location).toBe(path.join(dir, 'a', 'rs'))
    await local.check()
    expect(statSync(path.join(dir, 'a', 'rs')).isDirectory()).toBe(true)
    const s3 = await openRemoteStorage({ kind: 's3', bucket: 'b12', prefix: 'p/q', region: 'us-east-1' })
    try {
      expect(s3.location).toBe('s3://b12/p/q')
      expect(s3.location).toBe(remoteStorageLocation({ kind: 's3', bucket: 'b12', prefix: 'p/q' }))
    } finally {
      s3.close()
    }
  })
})

describe('pageserver.toml control_plane_api and id', () => {
  it('both absent: no control plane; both given: the upcall base and the node id, rendered and read back', () => {
    expect(parsePageserverConfig({}).controlPlane).toBeNull()
    const cp = parsePageserverConfig({ control_plane_api: 'http://127.0.0.1:1234/upcall/v1', id: 2 })
    expect(cp.controlPlane).toEqual({ api: 'http://127.0.0.1:1234/upcall/v1/', nodeId: 2 })
    const text = renderPageserverConfig(cp)
    expect(text).toContain('id = 2\ncontrol_plane_api = "http://127.0.0.1:1234/upcall/v1/"\n')
    expect(parsePageserverConfig(parseToml(text)).controlPlane).toEqual(cp.controlPlane)
  })

  it('refuses one without the other, a URL that is not http and an id that is not a positive integer', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ id: 1 }, 'id needs control_plane_api, the storage controller'],
      [
        { control_plane_api: 'http://127.0.0.1:1234/upcall/v1/' },
        "control_plane_api needs id, this pageserver's node id",
      ],
      [
        { control_plane_api: 'localhost:1234', id: 1 },
        'control_plane_api must be an http:// URL, got "localhost:1234"',
      ],
      [
        { control_plane_api: 'not a url', id: 1 },
        'control_plane_api must be an http:// URL, got "not a url"',
      ],
      [{ control_plane_api: 'http://127.0.0.1:1234/', id: 0 }, 'id must be a positive integer, got 0'],
      [{ control_plane_api: 7, id: 1 }, 'control_plane_api must be a string'],
    ]
    for (const [doc, msg] of bad) expect(() => parsePageserverConfig(doc)).toThrow(msg)
  })
})
