/**
 * The repository: a directory of tenants (`tenants/<tenant_id>/config`, `.../timelines/<timeline_id>/`),
 * and what they share — the page cache, the memory budget for open layers, the redo functions and the
 * task manager. Opening it restores every tenant, timeline, branch and config.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { generateId, parseId } from '../lib/ids.js'
import type { LogFn } from '../lib/log.js'
import { EngineStateError, NotFoundError } from './errors.js'
import { DEFAULT_MEMORY_BUDGET, MemoryBudget } from './memory-budget.js'
import { PageCache } from './page-cache.js'
import { DEFAULT_GENERATION } from './remote-layout.js'
import { TaskManager } from './task-manager.js'
import { type RemoteContext, type RepositoryContext, Tenant } from './tenant.js'
import { type TenantConfigOverrides, validateOverrides } from './tenant-config.js'
import { RedoRegistry } from './value.js'

export const TENANTS_DIR = 'tenants'
export const DEFAULT_PAGE_CACHE_SLOTS = 8192

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
  /** Remote storage for every layer and index, with the generation (default 1) and its validation. */
  remote?: Omit<RemoteContext, 'generation'> & { generation?: number }
}

export class Repository {
  private readonly tenantMap = new Map<string, Tenant>()

  private constructor(
    readonly dir: string,
    readonly ctx: RepositoryContext,
  ) {}

  static open(dir: string, opts: RepositoryOptions = {}): Repository {
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
      remote: opts.remote && { ...opts.remote, generation: opts.remote.generation ?? DEFAULT_GENERATION },
    }
    const repo = new Repository(dir, ctx)
    const tenantsDir = path.join(dir, TENANTS_DIR)
    mkdirSync(tenantsDir, { recursive: true })
    for (const id of readdirSync(tenantsDir)) {
      if (!/^[0-9a-f]{32}$/.test(id)) continue
      repo.tenantMap.set(id, Tenant.load(ctx, path.join(tenantsDir, id), id))
    }
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

  tenant(id: string): Tenant {
    const t = this.tenantMap.get(parseId(id, 'tenant'))
    if (!t) throw new NotFoundError(`tenant ${id} not found`)
    return t
  }

  createTenant(opts: { tenantId?: string; config?: Record<string, unknown> } = {}): Tenant {
    const id = parseId(opts.tenantId ?? generateId(), 'tenant')
    const dir = path.join(this.dir, TENANTS_DIR, id)
    if (this.tenantMap.has(id) || existsSync(dir)) throw new EngineStateError(`tenant ${id} already exists`)
    const t = Tenant.create(this.ctx, dir, id, opts.config ?? {})
    this.tenantMap.set(id, t)
    return t
  }

  /** Stops every tenant; `flush` (default) makes all ingested data durable first. */
  async close(opts: { flush?: boolean } = {}): Promise<void> {
    for (const t of this.tenants()) await t.shutdown({ flush: opts.flush ?? true })
    await this.ctx.tasks.shutdown('all')
    this.tenantMap.clear()
  }
}
