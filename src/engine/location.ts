/**
 * A tenant's location on this pageserver (Neon's location_config): the generation of its attachment
 * and the mode, persisted as `tenants/<id>/location` (JSON, written durably) so a restart without the
 * control plane's answer resumes as it was. Detached is no location at all: the tenant is not here.
 *
 * - AttachedSingle: the only attachment; ingest, reads, uploads and deletions.
 * - AttachedMulti: another pageserver is attached too (a migration); uploads, no deletions.
 * - AttachedStale: a newer attachment exists; no remote storage operation at all (uploads held, nothing
 *   deleted, remote_consistent_lsn frozen), while local ingest and reads go on.
 * - Secondary: a warm copy; no ingest or serving, every layer of the newest remote index downloaded.
 */
import { existsSync, readFileSync } from 'node:fs'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { checkGeneration, DEFAULT_GENERATION } from './remote-layout.js'

export const LOCATION_FILE = 'location'
export const LOCATION_MODES = ['AttachedSingle', 'AttachedMulti', 'AttachedStale', 'Secondary'] as const
export type LocationMode = (typeof LOCATION_MODES)[number]
/** The modes in which the tenant is attached (serves reads and ingests). */
export type AttachMode = Exclude<LocationMode, 'Secondary'>

export interface Location {
  generation: number
  mode: LocationMode
}

export const DEFAULT_LOCATION: Location = { generation: DEFAULT_GENERATION, mode: 'AttachedSingle' }

export class LocationError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'LocationError'
}

/** Why a location is not valid, or null. */
export function checkLocation(loc: Location): string | null {
  const bad = checkGeneration(loc.generation)
  if (bad) return `generation: ${bad}`
  if (!LOCATION_MODES.includes(loc.mode))
    return `mode "${loc.mode}" is not one of ${LOCATION_MODES.join(', ')}`
  return null
}

/** The tenant's persisted location; a tenant from before locations existed is DEFAULT_LOCATION. */
export function readLocation(file: string): Location {
  if (!existsSync(file)) return { ...DEFAULT_LOCATION }
  let loc: Location
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as Location
    loc = { generation: j.generation, mode: j.mode }
  } catch (err) {
    throw new LocationError(`tenant location ${file} is not JSON: ${(err as Error).message}`, {
      kind: 'corruption',
    })
  }
  const bad = checkLocation(loc)
  if (bad) throw new LocationError(`tenant location ${file}: ${bad}`, { kind: 'corruption' })
  return loc
}

export function writeLocation(file: string, loc: Location): void {
  const bad = checkLocation(loc)
  if (bad) throw new LocationError(`invalid tenant location: ${bad}`)
  writeFileDurable(file, `${JSON.stringify({ generation: loc.generation, mode: loc.mode })}\n`)
}
