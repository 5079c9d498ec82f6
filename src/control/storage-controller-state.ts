/**
 * What the storage controller knows: for each tenant the generation of its current attachment, the
 * pageserver (node) it is attached to and the mode of that location (Neon's AttachedSingle,
 * AttachedMulti, AttachedStale, Secondary; a detached tenant is absent). Kept in
 * `<repo>/storage_controller/state.json`:
 *
 *     {"version":1,"tenants":{"<tenant_id>":{"generation":2,"node_id":1,"mode":"AttachedSingle"}}}
 *
 * Every change is written durably before it is answered, so a generation once handed out is never
 * handed out again, also after a crash (RFC 025: the control plane is the authority for generations).
 *
 * Why a file of its own and not the repo config under the repo lock: a pageserver calls re-attach while
 * it starts, and `zenith start` starts it while holding the repo lock. A controller that took the lock
 * to answer would wait for `zenith start`, which waits for the pageserver, which waits for the
 * controller. So the controller process is the only writer of this file; the CLI changes it through the
 * controller's HTTP API, and may only read it while the controller is down.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { LOCATION_MODES, type LocationMode } from '../engine/location.js'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { parseId } from '../lib/ids.js'

const isLocationMode = (v: unknown): v is LocationMode => LOCATION_MODES.includes(v as LocationMode)

export interface TenantPlacement {
  generation: number
  node_id: number
  mode: LocationMode
}

export const STATE_FILE = 'state.json'
const STATE_VERSION = 1

export class ControllerStateError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ControllerStateError'
}

export class PlacementError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'PlacementError'
}

/** Generations and node ids (pageserver.toml's `id`) are positive integers. */
export function checkPositive(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new ZenithError(`${what} must be a positive integer, got ${JSON.stringify(v)}`, {
      kind: 'user_input',
    })
  return v
}

export const checkNodeId = (v: unknown): number => checkPositive(v, 'node_id')

export function checkMode(v: unknown): LocationMode {
  if (!isLocationMode(v))
    throw new ZenithError(`mode must be one of ${LOCATION_MODES.join(', ')}, got ${JSON.stringify(v)}`, {
      kind: 'user_input',
    })
  return v
}

function parseState(text: string, file: string): Map<string, TenantPlacement> {
  const bad = (why: string) =>
    new ControllerStateError(`${file}: ${why}`, {
      hint: 'the storage controller is its only writer; restore it from a backup or remove it to start over',
    })
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`)
  }
  const d = doc as { version?: unknown; tenants?: unknown }
  if (d?.version !== STATE_VERSION)
    throw bad(`version must be ${STATE_VERSION}, got ${JSON.stringify(d?.version)}`)
  if (typeof d.tenants !== 'object' || d.tenants === null || Array.isArray(d.tenants))
    throw bad('tenants must be an object')
  const out = new Map<string, TenantPlacement>()
  for (const [id, p] of Object.entries(d.tenants as Record<string, Partial<TenantPlacement>>)) {
    try {
      out.set(parseId(id, 'tenant'), {
        generation: checkPositive(p?.generation, 'generation'),
        node_id: checkNodeId(p?.node_id),
        mode: checkMode(p?.mode),
      })
    } catch (err) {
      throw bad(`tenant ${id}: ${(err as Error).message}`)
    }
  }
  return out
}

export function readControllerState(file: string): Map<string, TenantPlacement> {
  return existsSync(file) ? parseState(readFileSync(file, 'utf8'), file) : new Map()
}

export class StorageControllerState {
  private constructor(
    readonly file: string,
    private readonly tenants: Map<string, TenantPlacement>,
  ) {}

  /** The state in `dir` (an absent file is an empty state). */
  static open(dir: string): StorageControllerState {
    mkdirSync(dir, { recursive: true })
    const file = path.join(dir, STATE_FILE)
    return new StorageControllerState(file, readControllerState(file))
  }

  /** Every tenant with its placement, sorted by id. */
  list(): ({ tenant_id: string } & TenantPlacement)[] {
    return [...this.tenants]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([tenant_id, p]) => ({ tenant_id, ...p }))
  }

  get(tenantId: string): TenantPlacement | undefined {
    const p = this.tenants.get(parseId(tenantId, 'tenant'))
    return p && { ...p }
  }

  /** Attaches the tenant to `node` with a new generation (the first is 1), which it returns. */
  attach(tenantId: string, node: number, mode: LocationMode = 'AttachedSingle'): number {
    const id = parseId(tenantId, 'tenant')
    const generation = (this.tenants.get(id)?.generation ?? 0) + 1
    this.save(
      new Map(this.tenants).set(id, { generation, node_id: checkNodeId(node), mode: checkMode(mode) }),
    )
    return generation
  }

  /** Changes the mode of the tenant's location on `node`, at the same generation. */
  setMode(tenantId: string, node: number, mode: LocationMode): TenantPlacement {
    const id = parseId(tenantId, 'tenant')
    const p = this.placementOf(id)
    if (p.node_id !== checkNodeId(node))
      throw new PlacementError(
        `tenant ${id} is attached to pageserver ${p.node_id}, not ${node}: only its own node's mode can change`,
        { hint: 'attach it to that pageserver first (a new generation)' },
      )
    const next = { ...p, mode: checkMode(mode) }
    this.save(new Map(this.tenants).set(id, next))
    return { ...next }
  }

  detach(tenantId: string): void {
    const id = parseId(tenantId, 'tenant')
    this.placementOf(id)
    const next = new Map(this.tenants)
    next.delete(id)
    this.save(next)
  }

  /**
   * A pageserver (re)starts: every tenant attached to it gets generation+1, as Neon bumps on every
   * restart, so that whatever the previous process may still be writing is of an older generation.
   */
  reAttach(node: number): { id: string; gen: number; mode: LocationMode }[] {
    checkNodeId(node)
    const out = this.list()
      .filter((p) => p.node_id === node)
      .map((p) => ({ id: p.tenant_id, gen: p.generation + 1, mode: p.mode }))
    if (out.length === 0) return out
    this.save(
      new Map([
        ...this.tenants,
        ...out.map((t) => [t.id, { ...this.tenants.get(t.id)!, generation: t.gen }] as const),
      ]),
    )
    return out
  }

  /** Valid iff the generation is the tenant's current one; an unknown tenant is not valid. */
  validate(tenants: readonly { id: string; gen: number }[]): { id: string; valid: boolean }[] {
    return tenants.map(({ id, gen }) => ({
      id,
      valid: this.tenants.get(parseId(id, 'tenant'))?.generation === gen,
    }))
  }

  private placementOf(id: string): TenantPlacement {
    const p = this.tenants.get(id)
    if (!p)
      throw new ZenithError(`tenant ${id} is not attached anywhere`, {
        kind: 'not_found',
        hint: 'attach it first',
      })
    return p
  }

  /** Writes `next` durably, and only then makes it the state: a failed write changes nothing. */
  private save(next: Map<string, TenantPlacement>): void {
    const tenants = Object.fromEntries([...next].sort(([a], [b]) => a.localeCompare(b)))
    writeFileDurable(this.file, `${JSON.stringify({ version: STATE_VERSION, tenants })}\n`)
    this.tenants.clear()
    for (const [id, p] of next) this.tenants.set(id, p)
  }
}
