/**
 * Where the pageserver keeps its remote copy of every layer and index: `remote_storage` in
 * pageserver.toml, a local directory or an S3 bucket (Neon's two forms, with zenith's names):
 *
 *     remote_storage = { local_path = "/path/to/.zenith/remote_storage" }
 *     remote_storage = { bucket = "my-bucket", prefix = "zenith/main", region = "eu-west-1", endpoint = "http://127.0.0.1:5000" }
 *
 * A relative local_path is relative to the directory of pageserver.toml. For S3, prefix (default: the
 * bucket's root), region (default: the AWS SDK's, from AWS_REGION or the profile) and endpoint (an
 * S3-compatible server; default AWS) may be left out. Credentials are never in the file: the SDK's
 * default chain finds them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile).
 */
import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { LocalFsStorage } from '../engine/local-fs-storage.js'
import type { RemoteStorage } from '../engine/remote-storage.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export type RemoteStorageConfig =
  | { kind: 'local'; localPath: string }
  | { kind: 's3'; bucket: string; prefix: string; region?: string; endpoint?: string }

export class RemoteStorageConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'RemoteStorageConfigError'
}

const FORMS = '{ local_path = "DIR" } or { bucket = "NAME", prefix = "P", region = "R", endpoint = "URL" }'
const S3_KEYS = ['bucket', 'prefix', 'region', 'endpoint']

/** S3's rules for bucket names (the common subset: no uppercase, no underscores). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

function checkBucket(bucket: string, what: string): string {
  if (!BUCKET_NAME.test(bucket) || bucket.includes('..'))
    throw new RemoteStorageConfigError(
      `${what} "${bucket}" is not an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    )
  return bucket
}

/** The prefix without the slashes at its ends; its parts are non-empty, and neither `.` nor `..`. */
function checkPrefix(prefix: string, what: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, '')
  if (p !== '' && p.split('/').some((part) => part === '' || part === '.' || part === '..'))
    throw new RemoteStorageConfigError(
      `${what} "${prefix}" is not a key prefix: parts separated by single slashes, none of them . or ..`,
    )
  return p
}

function checkRegion(region: string, what: string): string {
  if (!/^[a-z0-9-]+$/.test(region))
    throw new RemoteStorageConfigError(
      `${what} "${region}" is not an AWS region name (lowercase letters, digits and hyphens, like us-east-1)`,
    )
  return region
}

function checkEndpoint(endpoint: string, what: string): string {
  let url: URL | undefined
  try {
    url = new URL(endpoint)
  } catch {}
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '')
    throw new RemoteStorageConfigError(
      `${what} "${endpoint}" is not an http:// or https:// URL of an S3-compatible server`,
    )
  return endpoint.replace(/\/+$/, '')
}

/** The `remote_storage` value of pageserver.toml; `baseDir` is where a relative local_path starts. */
export function parseRemoteStorageConfig(value: unknown, baseDir: string): RemoteStorageConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RemoteStorageConfigError(`remote_storage must be a table, ${FORMS}`)
  const doc = value as Record<string, unknown>
  const str = (k: string): string | undefined => {
    const v = doc[k]
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v === '')
      throw new RemoteStorageConfigError(
        `remote_storage.${k} must be a non-empty string, got ${JSON.stringify(v)}`,
      )
    return v
  }
  for (const k of Object.keys(doc))
    if (k !== 'local_path' && !S3_KEYS.includes(k))
      throw new RemoteStorageConfigError(`remote_storage: unknown setting "${k}"; ${FORMS}`)
  const mixed = S3_KEYS.find((k) => k in doc)
  if ('local_path' in doc && mixed !== undefined)
    throw new RemoteStorageConfigError(
      `remote_storage takes local_path or a bucket with its settings, not both (${mixed} is given with local_path)`,
    )
  const localPath = str('local_path')
  if (localPath !== undefined) return { kind: 'local', localPath: path.resolve(baseDir, localPath) }
  const bucket = str('bucket')
  if (bucket === undefined)
    throw new RemoteStorageConfigError(`remote_storage needs local_path or bucket: ${FORMS}`)
  const region = str('region')
  const endpoint = str('endpoint')
  return {
    kind: 's3',
    bucket: checkBucket(bucket, 'remote_storage.bucket'),
    prefix: checkPrefix(str('prefix') ?? '', 'remote_storage.prefix'),
    ...(region !== undefined ? { region: checkRegion(region, 'remote_storage.region') } : {}),
    ...(endpoint !== undefined ? { endpoint: checkEndpoint(endpoint, 'remote_storage.endpoint') } : {}),
  }
}

/** The `remote_storage = { … }` line of pageserver.toml. */
export function renderRemoteStorageConfig(c: RemoteStorageConfig): string {
  const fields: [string, string | undefined][] =
    c.kind === 'local'
      ? [['local_path', c.localPath]]
      : [
          ['bucket', c.bucket],
          ['prefix', c.prefix === '' ? undefined : c.prefix],
          ['region', c.region],
          ['endpoint', c.endpoint],
        ]
  const set = fields.filter((f): f is [string, string] => f[1] !== undefined)
  return `remote_storage = { ${set.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')} }`
}

export const s3Location = (bucket: string, prefix: string) =>
  `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`

/** Where it is, as the backend names it (`/dir`, `s3://bucket/prefix`), without opening it. */
export function remoteStorageLocation(c: RemoteStorageConfig): string {
  return c.kind === 'local' ? c.localPath : s3Location(c.bucket, c.prefix)
}

/**
 * `zenith init --remote-storage <dir | s3://bucket/prefix> [--s3-endpoint URL] [--s3-region R]`: a
 * directory relative to `cwd`, or a bucket.
 */
export function remoteStorageFromArgs(
  arg: string,
  opts: { s3Endpoint?: string; s3Region?: string; cwd: string },
): RemoteStorageConfig {
  const s3 = /^s3:\/\/([^/]*)\/?(.*)$/.exec(arg)
  if (s3 === null) {
    if (opts.s3Endpoint !== undefined || opts.s3Region !== undefined)
      throw new RemoteStorageConfigError(
        `--s3-endpoint and --s3-region apply to --remote-storage s3://bucket/prefix, not to the directory ${arg}`,
      )
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg))
      throw new RemoteStorageConfigError(
        `--remote-storage "${arg}" is neither a directory nor s3://bucket/prefix`,
      )
    return { kind: 'local', localPath: path.resolve(opts.cwd, arg) }
  }
  return {
    kind: 's3',
    bucket: checkBucket(s3[1], 'the bucket of --remote-storage'),
    prefix: checkPrefix(s3[2], 'the prefix of --remote-storage'),
    ...(opts.s3Region !== undefined ? { region: checkRegion(opts.s3Region, '--s3-region') } : {}),
    ...(opts.s3Endpoint !== undefined ? { endpoint: checkEndpoint(opts.s3Endpoint, '--s3-endpoint') } : {}),
  }
}

/** A backend as the pageserver holds it: it can be checked at start and closed at stop. */
export interface RemoteStorageBackend extends RemoteStorage {
  /** Fails when the store cannot be used: a bucket missing or unreachable, a directory not writable. */
  check(): Promise<void>
  close(): void
}

class LocalDirBackend extends LocalFsStorage implements RemoteStorageBackend {
  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true })
      await access(this.root, constants.W_OK)
    } catch (err) {
      throw new RemoteStorageConfigError(
        `remote storage directory ${this.root} cannot be written: ${(err as Error).message}`,
        { kind: 'unavailable' },
      )
    }
  }

  close(): void {}
}

/** The backend; the AWS SDK is loaded only for S3, as it costs every CLI command a third of a second. */
export async function openRemoteStorage(c: RemoteStorageConfig): Promise<RemoteStorageBackend> {
  if (c.kind === 'local') return new LocalDirBackend(c.localPath)
  const { S3Storage } = await import('./s3-storage.js')
  return new S3Storage({
    bucket: c.bucket,
    prefix: c.prefix,
    ...(c.region !== undefined ? { region: c.region } : {}),
    ...(c.endpoint !== undefined ? { endpoint: c.endpoint } : {}),
  })
}
