/**
 * The pageserver: the storage engine's repository behind a management HTTP API, a libpq page service
 * and one WAL receiver per timeline that has a WAL source. The same object runs as a detached process
 * (`zenith pageserver start`) or inside the CLI (`zenith start --embedded`).
 */

import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { EngineStateError, LayerNotLocalError } from '../engine/errors.js'
import { withLocalLayers } from '../engine/layer-download.js'
import type { Location, LocationMode } from '../engine/location.js'
import { Repository, type RepositoryOptions } from '../engine/repository.js'
import type { Tenant } from '../engine/tenant.js'
import type { Timeline } from '../engine/timeline.js'
import { ZenithError } from '../lib/errors.js'
import { parseId } from '../lib/ids.js'
import type { LogFn } from '../lib/log.js'
import { logicalSize, postgresImageKeyFilter } from '../pgdata/datadir-keyspace.js'
import { formatLsn, type Lsn, maxAlign } from '../postgres/lsn.js'
import { walQuietUntil } from '../postgres/wal-page.js'
import { type Listener, listen } from '../protocol/listen.js'
import { bootstrapTimeline } from './bootstrap.js'
import { loadPageserverConfig, PAGESERVER_CONFIG_FILE, type PageserverConfig } from './config.js'
import { ControlPlaneClient } from './control-plane-client.js'
import { InvalidRequestError } from './errors.js'
import { createHttpApi } from './http-api.js'
import { createPageService } from './page-service.js'
import { PageserverMetrics } from './pageserver-metrics.js'
import { openRemoteStorage, type RemoteStorageBackend } from './remote-storage-config.js'
import { WalReceivers } from './wal-receiver.js'

/** How stale a timeline's logical size may be while its LSN moves. */
const LOGICAL_SIZE_MAX_AGE_MS = 10_000

export interface TimelineCreateRequest {
  newTimelineId: string
  ancestorTimelineId?: string
  ancestorStartLsn?: Lsn
}

export class Pageserver {
  readonly metrics: PageserverMetrics
  readonly walReceivers: WalReceivers
  private listeners: Listener[] = []
  private readonly logicalSizes = new WeakMap<Timeline, { lsn: Lsn; bytes: number; at: number }>()
  private stopping: Promise<void> | null = null
  /** Tenants whose location_config is being applied. */
  private readonly locationChanges = new Set<string>()
  /** The check of remote storage that start began; stop waits for it before closing the client. */
  private remoteCheck: Promise<void> = Promise.resolve()

  private constructor(
    readonly workdir: string,
    readonly config: PageserverConfig,
    readonly repo: Repository,
    readonly log: LogFn,
    /** null when pageserver.toml names none. */
    readonly remoteStorage: RemoteStorageBackend | null,
    /** The storage controller; null when pageserver.toml names none. */
    readonly controlPlane: ControlPlaneClient | null,
  ) {
    this.metrics = new PageserverMetrics(this)
    this.walReceivers = new WalReceivers(this)
  }

  /**
   * Opens the repository in `workdir` (settings from its pageserver.toml), starts the WAL receivers
   * and listens on both ports; a busy port fails the start and closes everything again. With remote
   * storage (pageserver.toml's, or `remote` for tests that shape retries and validation), every layer
   * and index is copied to it. Remote storage that cannot be reached does not fail the start: it is
   * checked in the background and a failure logged as a warning, since uploads retry until it answers.
   */
  static async start(
    workdir: string,
    opts: { log: LogFn; config?: PageserverConfig; remote?: RepositoryOptions['remote'] },
  ): Promise<Pageserver> {
    const config = opts.config ?? loadPageserverConfig(path.join(workdir, PAGESERVER_CONFIG_FILE))
    mkdirSync(workdir, { recursive: true })
    const remote = config.remoteStorage === null ? null : await openRemoteStorage(config.remoteStorage)
    const controlPlane =
      config.controlPlane === null ? null : new ControlPlaneClient(config.controlPlane, opts.log)
    let locations: Map<string, Location> | null = null
    try {
      locations = controlPlane === null ? null : await controlPlane.reAttach()
    } catch (err) {
      remote?.close()
      throw err
    }
    if (locations !== null)
      opts.log('info', 're-attached at the storage controller', {
        node: config.controlPlane?.nodeId,
        tenants: [...locations].map(([id, l]) => `${id}:${l.mode}@${l.generation}`).join(','),
      })
    const repo = await Repository.open(workdir, {
      pageCacheSlots: config.pageCacheSize,
      memoryBudget: config.memoryBudget,
      defaults: config.tenantDefaults,
      log: opts.log,
      imageKeyFilter: postgresImageKeyFilter,
      quietUntil: walQuietUntil,
      remote:
        opts.remote ??
        (remote === null
          ? undefined
          : {
              storage: remote,
              ...(controlPlane === null
                ? {}
                : { validate: (tenantId, gen) => controlPlane.validate(tenantId, gen) }),
            }),
      ...(locations === null ? {} : { locations }),
    })
    const ps = new Pageserver(workdir, config, repo, opts.log, remote, controlPlane)
    if (remote !== null) ps.remoteCheck = ps.checkRemoteStorage(remote)
    try {
      ps.listeners.push(await listen(createHttpApi(ps), config.listenHttpAddr, 'pageserver HTTP API'))
      ps.listeners.push(await listen(createPageService(ps), config.listenPgAddr, 'pageserver page service'))
      ps.walReceivers.startAll()
    } catch (err) {
      await ps.stop()
      throw err
    }
    opts.log('info', 'pageserver started', {
      workdir,
      http: `${config.listenHttpAddr.host}:${config.listenHttpAddr.port}`,
      pg: `${config.listenPgAddr.host}:${config.listenPgAddr.port}`,
      tenants: repo.tenants().length,
      remoteStorage: remote?.location ?? 'none',
    })
    return ps
  }

  /**
   * A new tenant, AttachedSingle at the generation the storage controller issued for it (the CLI
   * attaches it there first); without one, at generation 1.
   */
  createTenant(opts: { tenantId: string; config: Record<string, unknown>; generation?: number }): Tenant {
    const t = this.repo.createTenant({
      tenantId: opts.tenantId,
      config: opts.config,
      ...(opts.generation === undefined
        ? {}
        : { location: { generation: opts.generation, mode: 'AttachedSingle' as const } }),
    })
    this.log('info', 'tenant created', { tenantId: t.tenantId, generation: t.generation })
    return t
  }

  private async checkRemoteStorage(remote: RemoteStorageBackend): Promise<void> {
    try {
      await remote.check()
    } catch (err) {
      const hint = err instanceof ZenithError ? err.hint : undefined
      this.log('warn', 'remote storage is not usable now; uploads will retry', {
        location: remote.location,
        error: (err as Error).message,
        ...(hint !== undefined ? { hint } : {}),
      })
    }
  }

  /** Stops receiving WAL, closes the listeners and makes everything ingested durable. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log('info', 'pageserver stopping')
      await this.walReceivers.stopAll()
      await Promise.all(this.listeners.map((l) => l.close()))
      await this.repo.close({ flush: true })
      await this.remoteCheck
      this.controlPlane?.close()
      this.remoteStorage?.close()
      this.log('info', 'pageserver stopped')
    })()
    return this.stopping
  }

  tenant(id: string): Tenant {
    return this.repo.tenant(id)
  }

  timeline(tenantId: string, timelineId: string): Timeline {
    return this.repo.tenant(tenantId).timeline(timelineId)
  }

  /**
   * A new timeline: a branch of an ancestor at an LSN (waiting for the ancestor to receive it), or,
   * without an ancestor, a fresh cluster made by initdb.
   */
  async createTimeline(tenant: Tenant, req: TimelineCreateRequest): Promise<Timeline> {
    const id = parseId(req.newTimelineId, 'timeline')
    // The engine refuses a duplicate too, but only after initdb would have run for seconds.
    if (tenant.timelines().some((t) => t.timelineId === id)) {
      throw new EngineStateError(`timeline ${id} already exists in tenant ${tenant.tenantId}`)
    }
    if (req.ancestorTimelineId === undefined) {
      if (req.ancestorStartLsn !== undefined) {
        throw new InvalidRequestError('ancestor_start_lsn needs ancestor_timeline_id')
      }
      return bootstrapTimeline(tenant, id, { pgDistribDir: this.config.pgDistribDir, log: this.log })
    }
    const ancestor = tenant.timeline(req.ancestorTimelineId)
    // The branch's WAL starts at its branch point, so that must be where a record can start; Postgres
    // reports only such LSNs, and any other is taken up to the next one, as Neon does.
    const asked = req.ancestorStartLsn === undefined ? undefined : maxAlign(req.ancestorStartLsn)
    const lsn = await ancestor.readLsn({
      lsn: asked,
      what: 'branch point',
      timeoutMs: this.config.waitLsnTimeoutMs,
    })
    const tl = tenant.branch(ancestor.timelineId, { lsn, timelineId: id })
    this.log('info', 'timeline branched', {
      tenantId: tenant.tenantId,
      timelineId: id,
      ancestor: ancestor.timelineId,
      lsn: formatLsn(tl.ancestorLsn),
    })
    return tl
  }

  /**
   * Neon's location_config: makes the tenant be here in `req.mode`. A tenant not here is attached from
   * remote storage (its timelines registered from their indexes, layers fetched when read); one here
   * gets the new generation or mode; Detached stops its WAL receivers and detaches it (uploads finished,
   * local copy removed), and is a no-op for a tenant not here. `flushMs`: before an attached tenant
   * turns AttachedStale or Secondary, everything it ingested is uploaded, waited for that long. One
   * change per tenant at a time: another while one runs is a conflict.
   */
  async locationConfig(
    tenantId: string,
    req: { mode: LocationMode | 'Detached'; generation?: number; tenantConf?: Record<string, unknown> },
    flushMs?: number,
  ): Promise<Tenant | null> {
    const id = parseId(tenantId, 'tenant')
    if (this.locationChanges.has(id))
      throw new EngineStateError(`tenant ${id} is changing its location already`, { kind: 'conflict' })
    this.locationChanges.add(id)
    try {
      const held = this.repo.tenants().find((t) => t.tenantId === id) ?? null
      if (req.mode === 'Detached') {
        if (!held) return null
        const sources = await this.walReceivers.removeTenant(id)
        try {
          await this.repo.detachTenant(id)
        } catch (err) {
          // Still attached (its uploads did not finish): it takes WAL again, from where it did.
          for (const [timelineId, source] of sources) await this.walReceivers.set(id, timelineId, source)
          throw err
        }
        return null
      }
      if (req.generation === undefined)
        throw new InvalidRequestError(`generation is required for mode ${req.mode}`)
      const location = { generation: req.generation, mode: req.mode }
      if (!held) {
        if (this.remoteStorage === null)
          throw new EngineStateError(
            `tenant ${id} cannot be attached: this pageserver has no remote storage`,
            {
              kind: 'conflict',
              hint: 'pageserver.toml names it (remote_storage)',
            },
          )
        const t = await this.repo.attachTenant(id, { ...location, config: req.tenantConf ?? {} })
        this.log('info', 'tenant attached', { tenantId: id, ...location, timelines: t.timelines().length })
        return t
      }
      const handingOver = req.mode === 'AttachedStale' || req.mode === 'Secondary'
      if (
        flushMs !== undefined &&
        handingOver &&
        (held.mode === 'AttachedSingle' || held.mode === 'AttachedMulti')
      )
        await held.flushToRemote(flushMs, req.mode)
      if (req.mode === 'Secondary') await this.walReceivers.removeTenant(id)
      await this.repo.setLocation(id, location)
      return held
    } finally {
      this.locationChanges.delete(id)
    }
  }

  async deleteTimeline(tenant: Tenant, timelineId: string): Promise<void> {
    await tenant.deleteTimeline(timelineId, {
      beforeRemove: (tl) => this.walReceivers.set(tl.tenantId, tl.timelineId, null),
    })
    this.log('info', 'timeline deleted', { tenantId: tenant.tenantId, timelineId })
  }

  /**
   * current_logical_size, and whether it is the size at last_record_lsn. Summing every relation's size
   * takes milliseconds, and the control plane and the dashboard poll timeline detail every second while
   * WAL flows, so a figure is kept until the LSN moves and then for LOGICAL_SIZE_MAX_AGE_MS at most.
   */
  logicalSize(tl: Timeline): { bytes: number; accurate: boolean } {
    const lsn = tl.lastRecordLsn
    const known = this.logicalSizes.get(tl)
    if (known && (known.lsn === lsn || Date.now() - known.at < LOGICAL_SIZE_MAX_AGE_MS))
      return { bytes: known.bytes, accurate: known.lsn === lsn }
    const sum = () => logicalSize((key) => tl.get(key, lsn))
    try {
      const bytes = sum()
      this.logicalSizes.set(tl, { lsn, bytes, at: Date.now() })
      return { bytes, accurate: true }
    } catch (err) {
      if (!(err instanceof LayerNotLocalError)) throw err
      // Timeline detail must not wait for downloads: they run now, and a later poll has the figure.
      void withLocalLayers(sum).then(
        (bytes) => this.logicalSizes.set(tl, { lsn, bytes, at: Date.now() }),
        (e: Error) =>
          this.log('warn', 'logical size not known: a layer download failed', {
            tenantId: tl.tenantId,
            timelineId: tl.timelineId,
            error: e.message,
          }),
      )
      return { bytes: known?.bytes ?? 0, accurate: false }
    }
  }
}
