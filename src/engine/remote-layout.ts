/**
 * Where a timeline's objects live in remote storage, after Neon's layout:
 *
 *   tenants/<tenant>/timelines/<timeline>/<layer-name>-<generation>
 *   tenants/<tenant>/timelines/<timeline>/index_part.json-<generation>
 *
 * The generation (8 lower-case hex digits, as Neon prints its u32) is the attachment's: every attach of
 * a tenant gets a new one from the control plane, so two pageservers that both think they hold a tenant
 * never write the same key, and a stale one can be told apart by its objects.
 */
import { parseLayerName } from './layer-name.js'
import { RemoteStorageError } from './remote-storage.js'

export const INDEX_PART_NAME = 'index_part.json'
/** Until the control plane issues generations, every attachment has this one. */
export const DEFAULT_GENERATION = 1
const MAX_GENERATION = 0xffff_ffff

/** Why a value cannot be a generation, or null when it can. */
export function checkGeneration(g: number): string | null {
  return Number.isSafeInteger(g) && g >= 0 && g <= MAX_GENERATION
    ? null
    : `${g} is not a generation: an integer in 0 .. ${MAX_GENERATION} (ffffffff)`
}

export function formatGeneration(g: number): string {
  const bad = checkGeneration(g)
  if (bad) throw new RemoteStorageError(`cannot name a remote object: ${bad}`, { kind: 'bug' })
  return g.toString(16).padStart(8, '0')
}

/** The prefix every object of the timeline starts with, `/` included. */
export const timelinePrefix = (tenantId: string, timelineId: string): string =>
  `tenants/${tenantId}/timelines/${timelineId}/`

export const layerKey = (tenantId: string, timelineId: string, layer: string, generation: number): string =>
  `${timelinePrefix(tenantId, timelineId)}${layer}-${formatGeneration(generation)}`

export const indexKey = (tenantId: string, timelineId: string, generation: number): string =>
  `${timelinePrefix(tenantId, timelineId)}${INDEX_PART_NAME}-${formatGeneration(generation)}`

export type RemoteKey =
  | { kind: 'layer'; tenantId: string; timelineId: string; layer: string; generation: number }
  | { kind: 'index'; tenantId: string; timelineId: string; generation: number }

const KEY_RE = /^tenants\/([0-9a-f]{32})\/timelines\/([0-9a-f]{32})\/(.+)-([0-9a-f]{8})$/

/** What a key names, or null for any key outside the layout (temp objects, other tools' files). */
export function parseRemoteKey(key: string): RemoteKey | null {
  const m = KEY_RE.exec(key)
  if (!m) return null
  const [, tenantId, timelineId, name, gen] = m
  const generation = Number.parseInt(gen, 16)
  if (name === INDEX_PART_NAME) return { kind: 'index', tenantId, timelineId, generation }
  return parseLayerName(name) ? { kind: 'layer', tenantId, timelineId, layer: name, generation } : null
}

/**
 * The index a pageserver of `generation` loads from a timeline's listing: the one of the highest
 * generation at or below its own. A newer one belongs to a later attachment and is never loaded (that
 * pageserver is the stale one). Null when there is none.
 */
export function newestIndexAtOrBelow(
  keys: readonly string[],
  generation: number,
): { key: string; generation: number } | null {
  let best: { key: string; generation: number } | null = null
  for (const key of keys) {
    const k = parseRemoteKey(key)
    if (k?.kind !== 'index' || k.generation > generation) continue
    if (!best || k.generation > best.generation) best = { key, generation: k.generation }
  }
  return best
}
