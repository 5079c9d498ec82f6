/**
 * Remote storage in an S3 bucket (or any S3-compatible server: `endpoint`, path-style), through
 * @aws-sdk/client-s3. Object keys are `<prefix>/<key>`, so several clusters can share a bucket without
 * seeing each other's objects. Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance roles) unless given.
 *
 * S3 already keeps the contract's first rule: PutObject and CompleteMultipartUpload make an object
 * visible whole, never in part.
 *
 * Retries are the SDK's standard mode: up to `maxAttempts` (default 3) attempts of each request, for
 * network errors (refused, reset, timed out), 5xx answers and throttling, with exponential backoff and
 * full jitter from 100 ms (500 ms when throttled) up to 20 s, and a client-wide retry budget. What
 * still fails is a RemoteStorageError; the caller (the upload queue) retries on its own schedule.
 */
import { createWriteStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import {
  checkRemoteKey,
  RemoteNotFoundError,
  type RemoteObject,
  RemoteStorageError,
} from '../engine/remote-storage.js'
import { writeFileDurablyVia } from '../lib/durable-fs.js'
import type { ErrorKind } from '../lib/errors.js'
import { type RemoteStorageBackend, s3Location } from './remote-storage-config.js'

/** S3's limit on the keys of one DeleteObjects request. */
const DELETE_BATCH = 1000

/**
 * Files larger than this go up as a multipart upload of parts this size (S3's smallest part is 5 MiB).
 * Each part is read into memory first, so that the SDK can resend it on a retry (a stream cannot be
 * rewound), and parts go up one after another, so one upload holds one part's memory at a time.
 */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024

export interface S3StorageOptions {
  bucket: string
  /** Without leading or trailing `/`; '' puts the keys at the bucket's root. */
  prefix: string
  /** The SDK's own (AWS_REGION, the profile) when not given. */
  region?: string
  /** An S3-compatible server, `http://host:port`; addressed path-style (`<endpoint>/<bucket>/<key>`). */
  endpoint?: string
  /** Instead of the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string }
  /** Attempts of each request, the first included (the SDK's default is 3). */
  maxAttempts?: number
  /** How long connecting may take, and how long a request may wait for its answer's headers. */
  connectTimeoutMs?: number
  requestTimeoutMs?: number
  partSize?: number
}

interface SdkError {
  name?: string
  code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
}

export class S3Storage implements RemoteStorageBackend {
  readonly bucket: string
  readonly prefix: string
  readonly endpoint: string | undefined
  private readonly client: S3Client
  private readonly partSize: number

  constructor(opts: S3StorageOptions) {
    this.bucket = opts.bucket
    this.prefix = opts.prefix.replace(/^\/+|\/+$/g, '')
    this.endpoint = opts.endpoint
    this.partSize = opts.partSize ?? DEFAULT_PART_SIZE
    // The SDK warns on every Node below 22 that its releases after January 2027 will need 22; the
    // lockfile pins ours, and the warning would land in every pageserver log. AWS_SDK_…=false shows it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    this.client = new S3Client({
      ...(opts.region !== undefined ? { region: opts.region } : {}),
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 5_000,
        requestTimeout: opts.requestTimeoutMs ?? 60_000,
        throwOnRequestTimeout: true,
      },
    })
  }

  get location(): string {
    return s3Location(this.bucket, this.prefix)
  }

  private objectKey(key: string): string {
    checkRemoteKey(key)
    return this.prefix === '' ? key : `${this.prefix}/${key}`
  }

  /** The S3 failure as zenith's: a missing object is not found, anything else names the object and why. */
  private failure(op: string, key: string | undefined, err: unknown): Error {
    if (err instanceof RemoteStorageError || err instanceof RemoteNotFoundError) return err
    const e = err as SdkError
    const what = key === undefined ? this.location : `${this.location}/${key}`
    const at = this.endpoint === undefined ? '' : ` at ${this.endpoint}`
    if (e.name === 'NoSuchKey')
      return new RemoteNotFoundError(`remote object ${key} does not exist in ${this.location}`)
    const status = e.$metadata?.httpStatusCode
    const cause = [e.code ?? e.name, e.message].filter((s) => s !== undefined && s !== '').join(': ')
    const message = `S3 ${op} of ${what}${at} failed: ${cause || 'no answer'}${status ? ` (HTTP ${status})` : ''}`
    let kind: ErrorKind = 'unavailable'
    let hint = 'uploads and downloads are retried; check that the S3 endpoint is reachable'
    if (e.name === 'NoSuchBucket' || (op === 'HeadBucket' && status === 404)) {
      kind = 'not_found'
      hint = `create bucket ${this.bucket}, or name another in remote_storage in pageserver.toml`
    } else if (status === 401 || status === 403) {
      kind = 'user_input'
      hint = 'check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS profile) of the pageserver'
    } else if (status !== undefined && status < 500 && status !== 429) {
      kind = 'external'
      hint = 'the S3 server refused the request'
    }
    return new RemoteStorageError(message, { kind, hint, cause: err })
  }

  private async send<T>(op: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      throw this.failure(op, key, err)
    }
  }

  /** That the bucket is there and the credentials are good. */
  async check(): Promise<void> {
    await this.send('HeadBucket', undefined, () =>
      this.client.send(new HeadBucketCommand({ Bucket: this.bucket })),
    )
  }

  async put(key: string, body: Buffer): Promise<void> {
    const Key = this.objectKey(key)
    await this.send('PutObject', key, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body })),
    )
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const Key = this.objectKey(key)
    const fd = await open(localPath, 'r')
    try {
      const { size } = await fd.stat()
      const readPart = async (offset: number, length: number): Promise<Buffer> => {
        const buf = Buffer.allocUnsafe(length)
        let done = 0
        while (done < length) {
          const { bytesRead } = await fd.read(buf, done, length - done, offset + done)
          if (bytesRead === 0) throw new RemoteStorageError(`${localPath} shrank while it was uploaded`)
          done += bytesRead
        }
        return buf
      }
      if (size <= this.partSize) {
        const Body = await readPart(0, size)
        await this.send('PutObject', key, () =>
          this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body })),
        )
        return
      }
      await this.putMultipart(key, Key, size, readPart)
    } finally {
      await fd.close()
    }
  }

  /** A multipart upload; one that fails is aborted, so its parts do not linger (and cost) in the bucket. */
  private async putMultipart(
    key: string,
    Key: string,
    size: number,
    readPart: (offset: number, length: number) => Promise<Buffer>,
  ): Promise<void> {
    const { UploadId } = await this.send('CreateMultipartUpload', key, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key })),
    )
    try {
      const parts: { ETag: string | undefined; PartNumber: number }[] = []
      for (let offset = 0, PartNumber = 1; offset < size; offset += this.partSize, PartNumber++) {
        const Body = await readPart(offset, Math.min(this.partSize, size - offset))
        const { ETag } = await this.send('UploadPart', key, () =>
          this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber, Body })),
        )
        parts.push({ ETag, PartNumber })
      }
      await this.send('CompleteMultipartUpload', key, () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      )
    } catch (err) {
      // Best effort: the upload failed already, and the bucket's lifecycle rules can clean up after us.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined)
      throw err
    }
  }

  private async getObject(key: string) {
    const Key = this.objectKey(key)
    const out = await this.send('GetObject', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    )
    if (out.Body === undefined)
      throw new RemoteStorageError(`S3 GetObject of ${this.location}/${key} returned no body`, {
        kind: 'external',
      })
    return { body: out.Body, length: out.ContentLength }
  }

  async get(key: string): Promise<Buffer> {
    const { body } = await this.getObject(key)
    return this.send('GetObject', key, async () => Buffer.from(await body.transformToByteArray()))
  }

  async getFile(key: string, localPath: string): Promise<void> {
    const { body, length } = await this.getObject(key)
    await this.send('GetObject', key, () =>
      writeFileDurablyVia(localPath, async (tmp) => {
        await pipeline(body as Readable, createWriteStream(tmp, { flags: 'wx' }))
        // A connection cut mid-body can end the stream early without an error.
        const got = (await stat(tmp)).size
        if (length !== undefined && got !== length)
          throw new RemoteStorageError(
            `S3 GetObject of ${this.location}/${key} ended after ${got} of ${length} bytes`,
          )
      }),
    )
  }

  async list(prefix: string): Promise<RemoteObject[]> {
    const base = this.prefix === '' ? '' : `${this.prefix}/`
    const found: RemoteObject[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.send('ListObjectsV2', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken }),
        ),
      )
      for (const o of page.Contents ?? [])
        if (o.Key !== undefined) found.push({ key: o.Key.slice(base.length), size: o.Size ?? 0 })
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (ContinuationToken !== undefined)
    // S3 sorts by UTF-8 bytes, the contract by JavaScript's string order; they differ beyond the BMP.
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async delete(keys: readonly string[]): Promise<void> {
    const objectKeys = keys.map((k) => this.objectKey(k))
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH) {
      const Objects = objectKeys.slice(i, i + DELETE_BATCH).map((Key) => ({ Key }))
      const out = await this.send('DeleteObjects', keys[i], () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } })),
      )
      const failed = out.Errors ?? []
      if (failed.length > 0)
        throw new RemoteStorageError(
          `S3 DeleteObjects in ${this.location} failed for ${failed.length} of ${Objects.length} keys, first ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`.trimEnd(),
        )
    }
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy()
  }
}
