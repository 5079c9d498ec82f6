/**
 * A real S3-compatible server for tests: moto's `moto_server` (Neon's own choice; on this project's
 * machine image as the Python package moto) on a free 127.0.0.1 port, with one bucket made through the
 * SDK. moto keeps everything in memory, so stopping it removes every object.
 *
 *     const moto = await startMoto()      // in beforeAll
 *     new S3Storage({ ...moto.s3, prefix: 'p' })
 *     await moto.stop()                   // in afterAll
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { freePort } from '../../src/control/process.js'
import type { S3StorageOptions } from '../../src/pageserver/s3-storage.js'
import { sleep, waitFor } from './wait.js'

/** moto accepts any credentials; these are set on every client, so the outer environment does not count. */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' }
export const MOTO_REGION = 'us-east-1'
/** The same, as the environment of a zenith process that talks to moto (it uses the SDK's default chain). */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
  AWS_REGION: MOTO_REGION,
}

export interface Moto {
  endpoint: string
  bucket: string
  /** What an S3Storage on the bucket needs, but its prefix. */
  s3: Omit<S3StorageOptions, 'prefix'>
  stop(): Promise<void>
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    await fetch(endpoint, { signal: AbortSignal.timeout(1000) })
    return true
  } catch {
    return false
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
  if (!killed) {
    child.kill('SIGKILL')
    await exited
  }
}

export async function startMoto(bucket = 'zenith-test'): Promise<Moto> {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
  try {
    await Promise.race([
      waitFor(
        `moto_server on ${endpoint}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`)
          return (await answers(endpoint)) || undefined
        },
        30_000,
      ),
      spawnError.then((err) => {
        throw new Error(`cannot run moto_server (pip package moto): ${err.message}`)
      }),
    ])
    const s3 = { bucket, endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS }
    const client = new S3Client({ ...s3, forcePathStyle: true })
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }))
    } finally {
      client.destroy()
    }
    return { endpoint, bucket, s3, stop: () => stopChild(child) }
  } catch (err) {
    await stopChild(child)
    throw err
  }
}
