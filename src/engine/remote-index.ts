/**
 * Reading what remote storage holds of a tenant at start or attach: the newest index of a timeline at or
 * below the attachment's generation (a newer one belongs to a later attachment and is never loaded), the
 * timeline's objects beside it, and the timelines a tenant has. Storage that fails is retried a few
 * times and then the caller is told: a start must not guess what the remote copy holds.
 */
import { ZenithError } from '../lib/errors.js'
import { decodeIndexPart, type IndexPart } from './index-part.js'
import { newestIndexAtOrBelow, parseRemoteKey, timelinePrefix } from './remote-layout.js'
import { type RemoteObject, type RemoteStorage, RemoteStorageError } from './remote-storage.js'

export interface LoadedIndex {
  key: string
  generation: number
  index: IndexPart
  /** Every object of the timeline when the index was read (the layers it does not list are garbage). */
  objects: RemoteObject[]
}

export interface RemoteReadOptions {
  attempts?: number
  backoff?: { baseMs: number; maxMs: number }
}

const DEFAULT_ATTEMPTS = 5

/** Runs `fn`, retried with backoff on storage errors; not-found, corruption and bugs fail at once. */
export async function retryRemote<T>(
  what: string,
  fn: () => Promise<T>,
  opts: RemoteReadOptions & { retryable?: (err: unknown) => boolean } = {},
): Promise<T> {
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS
  const backoff = opts.backoff ?? { baseMs: 100, maxMs: 5_000 }
  const retryable =
    opts.retryable ??
    ((err: unknown) => !(err instanceof ZenithError && ['bug', 'corruption', 'not_found'].includes(err.kind)))
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!retryable(err)) throw err
      if (attempt >= attempts) {
        throw new RemoteStorageError(`${what} failed after ${attempt} attempts: ${(err as Error).message}`, {
          hint: 'check that remote storage is reachable',
          cause: err,
        })
      }
      await new Promise((r) => setTimeout(r, Math.min(backoff.maxMs, backoff.baseMs * 2 ** (attempt - 1))))
    }
  }
}

/**
 * The timeline's newest index with a generation ≤ `generation`, or null when storage has none. An index
 * that cannot be decoded is an IndexPartError naming its key.
 */
export async function loadRemoteIndex(
  storage: RemoteStorage,
  tenantId: string,
  timelineId: string,
  generation: number,
  opts: RemoteReadOptions = {},
): Promise<LoadedIndex | null> {
  const prefix = timelinePrefix(tenantId, timelineId)
  const objects = await retryRemote(`listing of ${prefix}`, () => storage.list(prefix), opts)
  const found = newestIndexAtOrBelow(
    objects.map((o) => o.key),
    generation,
  )
  if (!found) return null
  const buf = await retryRemote(`download of ${found.key}`, () => storage.get(found.key), opts)
  return { ...found, index: decodeIndexPart(buf, found.key), objects }
}

/** The ids of the timelines of which storage holds an index (any generation). */
export async function listRemoteTimelines(
  storage: RemoteStorage,
  tenantId: string,
  opts: RemoteReadOptions = {},
): Promise<string[]> {
  const prefix = `tenants/${tenantId}/timelines/`
  const objects = await retryRemote(`listing of ${prefix}`, () => storage.list(prefix), opts)
  const ids = new Set<string>()
  for (const o of objects) {
    const k = parseRemoteKey(o.key)
    if (k?.kind === 'index' && k.tenantId === tenantId) ids.add(k.timelineId)
  }
  return [...ids].sort()
}

/**
 * Layer objects of the timeline that the loaded index does not list, of its generation or older: left by
 * deletions that a stop dropped, or by uploads whose index never came. A newer generation's objects are
 * never garbage to an older index: they may be a later attachment's, still to be listed.
 */
export function garbageLayers(loaded: LoadedIndex): { name: string; generation: number }[] {
  const out: { name: string; generation: number }[] = []
  for (const o of loaded.objects) {
    const k = parseRemoteKey(o.key)
    if (k?.kind !== 'layer' || k.generation > loaded.generation) continue
    if (loaded.index.layers[k.layer]?.generation === k.generation) continue
    out.push({ name: k.layer, generation: k.generation })
  }
  return out
}
