/**
 * The repository: a directory of tenants (`tenants/<tenant_id>/config`, `.../timelines/<timeline_id>/`),
 * and what they share — the page cache, the memory budget for open layers, the redo functions and the
 * task manager. Opening it restores every tenant, timeline, branch and config.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fsyncDir } from '../lib/durable-fs.js'
import { generateId, parseId } from '../lib/ids.js'
import type { LogFn } from '../lib/log.js'
import { EngineStateError, NotFoundError } from './errors.js'
import { checkLocation, DEFAULT_LOCATION, type Location, LocationError } from './location.js'
import { DEFAULT_MEMORY_BUDGET, MemoryBudget } from './memory-budget.js'
import { PageCache } from './page-cache.js'
import { TaskManager } from './task-manager.js'
import { DELETED_SUFFIX, type RemoteContext, type RepositoryContext, Tenant } from './tenant.js'
import { type TenantConfigOverrides, validateOverrides } from './tenant-config.js'
import { RedoRegistry } from './value.js'

export const TENANTS_DIR = 'tenants'
export const DEFAULT_PAGE_CACHE_SLOTS = 8192
/** How long a detach waits for a tenant's uploads before it refuses. */
const DETACH_UPLOAD_MS = 30_000

export interface RepositoryOptions {
  /** 8 KiB slots of the page cache (default 8192 = 64 MiB). */
  pageCacheSlots?: number
  /** Bytes of open in-memory layers across all timelines (default 128 MiB). */
  memoryBudget?: number
  /** Repository-wide tenant config defaults, over Neon's. */
  defaults?: TenantConfigOverrides
  redo?: RedoRegistry
  log?: LogFn
  /** Run tenants' background loops (default true). */
  background?: boolean
  /** The keys that still exist at an LSN, for image layers (see RepositoryContext). */
  imageKeyFilter?: RepositoryContext['imageKeyFilter']
  /** How far past last_record_lsn a timeline's data stands still (see RepositoryContext). */
  quietUntil?: RepositoryContext['quietUntil']
  /** Remote storage for every layer and index, and the validation of generations. */
  remote?: RemoteContext
  /**
   * The tenants this repository holds, with their locations (the control plane's re-attach answer):
   * those not on local disk are attached from remote storage, local ones not named are removed. Without
   * it, every local tenant with its persisted location.
   */
  locations?: ReadonlyMap<string, Location>
}

export class Repository {
  private readonly tenantMap = new Map<string, Tenant>()

  private constructor(
    readonly dir: string,
    readonly ctx: RepositoryContext,
  ) {}

  static async open(dir: string, opts: RepositoryOptions = {}): Promise<Repository> {
    const log = opts.log ?? (() => {})
    const ctx: RepositoryContext = {
      cache: new PageCache(opts.pageCacheSlots ?? DEFAULT_PAGE_CACHE_SLOTS),
      redo: opts.redo ?? new RedoRegistry(),
      memory: new MemoryBudget(opts.memoryBudget ?? DEFAULT_MEMORY_BUDGET),
      tasks: new TaskManager({ log }),
      log,
      defaults: validateOverrides(opts.defaults ?? {}),
      background: opts.background ?? true,
      imageKeyFilter: opts.imageKeyFilter,
      quietUntil: opts.quietUntil,
      remote: opts.remote,
    }
    const repo = new Repository(dir, ctx)
    const tenantsDir = path.join(dir, TENANTS_DIR)
    mkdirSync(tenantsDir, { recursive: true })
    const wanted =
      opts.locations && new Map([...opts.locations].map(([id, loc]) => [parseId(id, 'tenant'), loc]))
    for (const loc of wanted?.values() ?? []) checkLocationArg(loc)
    for (const id of readdirSync(tenantsDir)) {
      const d = path.join(tenantsDir, id)
      if (id.endsWith(DELETED_SUFFIX)) {
        rmSync(d, { recursive: true, force: true })
        continue
      }
      if (!/^[0-9a-f]{32}$/.test(id)) continue
      if (wanted && !wanted.has(id)) {
        log('info', 'removing local tenant the control plane no longer attaches here', { tenantId: id })
        removeDirDurably(d)
        continue
      }
      repo.tenantMap.set(id, await Tenant.load(ctx, d, id, wanted?.get(id)))
    }
    for (const [id, loc] of wanted ?? []) if (!repo.tenantMap.has(id)) await repo.attachTenant(id, loc)
    return repo
  }

  get redo(): RedoRegistry {
    return this.ctx.redo
  }

  get pageCache(): PageCache {
    return this.ctx.cache
  }

  get memory(): MemoryBudget {
    return this.ctx.memory
  }

  get tasks(): TaskManager {
    return this.ctx.tasks
  }

  tenants(): Tenant[] {
    return [...this.tenantMap.values()]
  }

  /** A tenant that serves reads and ingest; a Secondary location does neither and is refused. */
  tenant(id: string): Tenant {
    const t = this.anyTenant(id)
    if (t.mode === 'Secondary') {
      throw new EngineStateError(
        `tenant ${t.tenantId} is a Secondary location here (generation ${t.generation}): it serves no reads and takes no WAL`,
        { hint: 'attach it (AttachedSingle or AttachedMulti) to serve it from this pageserver' },
      )
    }
    return t
  }

  /** A tenant held here in any mode (Secondary included). */
  anyTenant(id: string): Tenant {
    const t = this.tenantMap.get(parseId(id, 'tenant'))
    if (!t) throw new NotFoundError(`tenant ${id} not found`)
    return t
  }

  createTenant(
    opts: { tenantId?: string; config?: Record<string, unknown>; location?: Location } = {},
  ): Tenant {
    const id = parseId(opts.tenantId ?? generateId(), 'tenant')
    const dir = path.join(this.dir, TENANTS_DIR, id)
    if (this.tenantMap.has(id) || existsSync(dir)) throw new EngineStateError(`tenant ${id} already exists`)
    const t = Tenant.create(
      this.ctx,
      dir,
      id,
      opts.config ?? {},
      checkLocationArg(opts.location ?? DEFAULT_LOCATION),
    )
    this.tenantMap.set(id, t)
    return t
  }

  /**
   * Attaches a tenant from remote storage: every timeline's newest index at or below the generation,
   * registered together, ancestors before children, all layers remote-only until read. A tenant held
   * here already is refused; one with no timeline in storage is a NotFoundError.
   */
  async attachTenant(
    tenantId: string,
    location: Location & { config?: Record<string, unknown> },
  ): Promise<Tenant> {
    const id = parseId(tenantId, 'tenant')
    const dir = path.join(this.dir, TENANTS_DIR, id)
    const loc = checkLocationArg({ generation: location.generation, mode: location.mode })
    if (this.tenantMap.has(id) || existsSync(dir))
      throw new EngineStateError(`tenant ${id} already exists here`, {
        hint: 'detach it first, or change its location',
      })
    let t: Tenant
    try {
      t = await Tenant.attach(this.ctx, dir, id, loc, location.config ?? {})
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
    this.tenantMap.set(id, t)
    return t
  }

  /** Changes a tenant's generation or mode (Tenant.setLocation). */
  async setLocation(tenantId: string, location: Location): Promise<void> {
    await this.anyTenant(tenantId).setLocation(checkLocationArg(location))
  }

  /**
   * Detaches a tenant: its tasks are stopped and joined, its data flushed and uploaded (waited for up
   * to `uploadTimeoutMs`; if that fails, the error names what is not uploaded and nothing is removed),
   * then its directory goes, renamed away first. The caller stops its WAL receivers before.
   */
  async detachTenant(tenantId: string, opts: { uploadTimeoutMs?: number } = {}): Promise<void> {
    const t = this.anyTenant(tenantId)
    await t.stopForDetach(opts.uploadTimeoutMs ?? DETACH_UPLOAD_MS)
    this.tenantMap.delete(t.tenantId)
    removeDirDurably(t.dir)
    this.ctx.log('info', 'tenant detached', { tenantId: t.tenantId, generation: t.generation })
  }

  /** Stops every tenant; `flush` (default) makes all ingested data durable first. */
  async close(opts: { flush?: boolean } = {}): Promise<void> {
    for (const t of this.tenants()) await t.shutdown({ flush: opts.flush ?? true })
    await this.ctx.tasks.shutdown('all')
    this.tenantMap.clear()
  }
}

function checkLocationArg(loc: Location): Location {
  const bad = checkLocation(loc)
  if (bad) throw new LocationError(`invalid location: ${bad}`)
  return loc
}

/** Renames the directory away first, so a crash mid-removal never leaves half of it to be loaded. */
function removeDirDurably(dir: string): void {
  const doomed = `${dir}${DELETED_SUFFIX}`
  renameSync(dir, doomed)
  fsyncDir(path.dirname(dir))
  rmSync(doomed, { recursive: true, force: true })
}
