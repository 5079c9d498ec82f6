/**
 * On-demand download: a layer that only remote storage holds (after attach, or a start that found the
 * local file missing) is fetched when a read first needs it. Reads stay synchronous; one that reaches a
 * remote-only layer throws LayerNotLocalError, and withLocalLayers downloads that layer and runs the
 * read again, until every layer it needs is local.
 */
import { randomBytes } from 'node:crypto'
import { rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir, TEMP_SUFFIX } from '../lib/durable-fs.js'
import { ZenithError } from '../lib/errors.js'
import type { LogFn } from '../lib/log.js'
import { LayerNotLocalError } from './errors.js'
import { type RemoteReadOptions, retryRemote } from './remote-index.js'
import type { RemoteStorage } from './remote-storage.js'

/**
 * Runs `fn` (sync or async); each time it needs a layer that is not local, downloads that layer and runs
 * it again. It ends: every retry has one more layer local, and a download that fails fails the call.
 */
export async function withLocalLayers<T>(fn: () => T | Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (!(err instanceof LayerNotLocalError)) throw err
      await err.layer.download()
    }
  }
}

export interface LayerDownload {
  storage: RemoteStorage
  key: string
  file: string
  /** The size the index lists: a download of another size is refused. */
  size: number
  log: LogFn
  fields?: Record<string, unknown>
  retry?: RemoteReadOptions
}

/**
 * Fetches a layer object to a unique temp name beside `file` (fsynced by the backend), checks its size,
 * renames it into place and fsyncs the directory. Storage errors are retried a few times; then, or on a
 * wrong size, the error names the key and nothing is left in the directory.
 */
export async function downloadLayerFile(d: LayerDownload): Promise<void> {
  const started = performance.now()
  const tmp = `${d.file}${TEMP_SUFFIX}.${randomBytes(6).toString('hex')}`
  try {
    await retryRemote(
      `download of layer object ${d.key}`,
      async () => {
        await rm(tmp, { force: true })
        await d.storage.getFile(d.key, tmp)
        const got = (await stat(tmp)).size
        if (got !== d.size) {
          throw new ZenithError(
            `download of layer object ${d.key}: it is ${got} bytes, the remote index lists ${d.size}`,
            {
              kind: 'corruption',
              hint: 'the object was damaged in storage; an older generation of the index may list an intact copy',
            },
          )
        }
      },
      d.retry,
    )
    await rename(tmp, d.file)
    fsyncDir(path.dirname(d.file))
  } catch (err) {
    await rm(tmp, { force: true })
    if (err instanceof ZenithError && err.message.includes(d.key)) throw err
    throw new ZenithError(`download of layer object ${d.key} failed: ${(err as Error).message}`, {
      kind: err instanceof ZenithError ? err.kind : 'unavailable',
      cause: err,
    })
  }
  d.log('info', 'layer downloaded', {
    ...d.fields,
    layer: path.basename(d.file),
    key: d.key,
    bytes: d.size,
    ms: Math.round(performance.now() - started),
  })
}
