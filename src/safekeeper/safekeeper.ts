/**
 * The safekeeper process as an object, the same whether it runs detached (`zenith safekeeper run`) or
 * inside the CLI (`zenith start --embedded`): its timelines under the working directory, the HTTP API and
 * the walsender side on libpq, and the exchange with its peers (peers.ts). Timelines are opened at start,
 * and each pulls again from the compute its control file names.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogFn } from '../lib/log.js'
import { type Listener, listen } from '../protocol/listen.js'
import { applicationNameOf, type SafekeeperConfig } from './config.js'
import { SK_CONTROL_FILE_NAME } from './control-file.js'
import { createSafekeeperHttpApi } from './http-api.js'
import { httpPeerChannel, PeerExchange } from './peers.js'
import { SafekeeperMetrics } from './safekeeper-metrics.js'
import { type NewTimeline, SkTimeline } from './timeline.js'
import { createWalsenderService } from './walsender.js'

export class SafekeeperStateError extends ZenithError {
  static override kind: ErrorKind = 'not_found'
  override name = 'SafekeeperStateError'
}

export class Safekeeper {
  private readonly timelines = new Map<string, SkTimeline>()
  private listeners: Listener[] = []
  private peers: PeerExchange | null = null
  private readonly metrics = new SafekeeperMetrics()

  private constructor(
    readonly workdir: string,
    readonly config: SafekeeperConfig,
    readonly log: LogFn,
  ) {}

  static async start(workdir: string, opts: { config: SafekeeperConfig; log: LogFn }): Promise<Safekeeper> {
    mkdirSync(workdir, { recursive: true })
    const sk = new Safekeeper(workdir, opts.config, opts.log)
    try {
      for (const tenant of readdirSync(workdir, { withFileTypes: true })) {
        if (!tenant.isDirectory()) continue
        for (const tl of readdirSync(path.join(workdir, tenant.name), { withFileTypes: true })) {
          const dir = path.join(workdir, tenant.name, tl.name)
          if (tl.isDirectory() && existsSync(path.join(dir, SK_CONTROL_FILE_NAME))) {
            const t = await SkTimeline.open(dir, sk.timelineEnv())
            sk.timelines.set(`${t.tenantId}/${t.timelineId}`, t)
          }
        }
      }
      sk.listeners.push(
        await listen(createSafekeeperHttpApi(sk), opts.config.listenHttpAddr, 'safekeeper HTTP API'),
      )
      sk.listeners.push(
        await listen(createWalsenderService(sk), opts.config.listenPgAddr, 'safekeeper walsender'),
      )
      sk.peers = new PeerExchange(httpPeerChannel(opts.config.peers), () => sk.listTimelines(), opts.log)
      sk.peers.start()
    } catch (err) {
      await sk.stop()
      throw err
    }
    opts.log('info', 'safekeeper started', {
      id: opts.config.id,
      workdir,
      timelines: sk.timelines.size,
    })
    return sk
  }

  private timelineEnv() {
    return {
      log: this.log,
      metrics: this.metrics,
      applicationName: applicationNameOf(this.config.id),
      maxWriteLag: this.config.maxReplicationWriteLag,
      maxFlushLag: this.config.maxReplicationFlushLag,
      members: this.config.peers.length + 1,
    }
  }

  timeline(tenantId: string, timelineId: string): SkTimeline {
    const tl = this.timelines.get(`${tenantId}/${timelineId}`)
    if (!tl)
      throw new SafekeeperStateError(
        `timeline ${tenantId}/${timelineId} is not on safekeeper ${this.config.id}`,
      )
    return tl
  }

  listTimelines(): SkTimeline[] {
    return [...this.timelines.values()]
  }

  async createTimeline(t: NewTimeline): Promise<SkTimeline> {
    const id = `${t.tenantId}/${t.timelineId}`
    if (this.timelines.has(id)) {
      throw new SafekeeperStateError(`timeline ${id} exists on safekeeper ${this.config.id}`, {
        kind: 'conflict',
      })
    }
    const tl = await SkTimeline.create(this.workdir, t, this.timelineEnv())
    this.timelines.set(id, tl)
    this.log('info', 'timeline created', { tenantId: t.tenantId, timelineId: t.timelineId })
    return tl
  }

  renderMetrics(): string {
    return this.metrics.render()
  }

  /** Stops serving and pulling, and writes every control file. */
  async stop(): Promise<void> {
    // First, so that no peer's answer arrives at a closed timeline.
    await this.peers?.stop()
    this.peers = null
    await Promise.all(this.listeners.map((l) => l.close()))
    this.listeners = []
    await Promise.all(this.listTimelines().map((t) => t.close()))
    this.timelines.clear()
    this.log('info', 'safekeeper stopped', { id: this.config.id })
  }
}
