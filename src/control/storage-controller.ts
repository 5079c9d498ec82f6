/**
 * The storage controller: the authority for generations (RFC 025), on loopback HTTP. Pageservers call
 * Neon's upcalls; the CLI changes placements through the control API (docs/http-api.md):
 *
 *     POST   /upcall/v1/re-attach         {node_id}               → {tenants:[{id, gen, mode}]}
 *     POST   /upcall/v1/validate          {tenants:[{id, gen}]}   → {tenants:[{id, valid}]}
 *     POST   /control/v1/tenant/:id/attach {node_id, mode?}       → {tenant_id, generation, node_id, mode}
 *     PUT    /control/v1/tenant/:id/mode   {node_id, mode}        → the same
 *     DELETE /control/v1/tenant/:id
 *     GET    /control/v1/tenant                                   → [{tenant_id, generation, node_id, mode}]
 *     GET    /v1/status, GET /metrics
 *
 * Its state is storage-controller-state.ts's; each request runs to its end before the next starts (the
 * handlers are synchronous), so two attaches never hand out one generation.
 */

import type { LocationMode } from '../engine/location.js'
import { parseId } from '../lib/ids.js'
import type { LogFn } from '../lib/log.js'
import { Counter, MetricsRegistry } from '../lib/metrics.js'
import { processMetrics } from '../lib/process-metrics.js'
import { HttpError, objectBody, Router, routerServer } from '../protocol/http-router.js'
import { type Listener, listen } from '../protocol/listen.js'
import type { StorageControllerConfig } from './storage-controller-config.js'
import { checkMode, checkNodeId, checkPositive, StorageControllerState } from './storage-controller-state.js'

export interface PlacementInfo {
  tenant_id: string
  generation: number
  node_id: number
  mode: LocationMode
}

/** The validate body: a list of `{id, gen}`, each checked, so a bad entry is a 400 naming it. */
function validateRequest(body: unknown): { id: string; gen: number }[] {
  const tenants = objectBody(body, false).tenants
  if (!Array.isArray(tenants)) throw new HttpError(400, 'tenants must be a list of {"id", "gen"}')
  return tenants.map((t, i) => {
    if (typeof t !== 'object' || t === null || typeof t.id !== 'string')
      throw new HttpError(400, `tenants[${i}] must be {"id": "<tenant id>", "gen": <generation>}`)
    return { id: t.id, gen: checkPositive(t.gen, `tenants[${i}].gen`) }
  })
}

export class StorageController {
  readonly metrics = new MetricsRegistry()
  private readonly requests = this.metrics.add(
    new Counter('storage_controller_http_requests_total', 'HTTP requests answered, by route'),
  )

  private constructor(
    readonly config: StorageControllerConfig,
    readonly state: StorageControllerState,
    readonly log: LogFn,
    private listener: Listener | null = null,
  ) {
    this.metrics.add(processMetrics())
  }

  /** Opens the state in `dir` and listens on the configured address. */
  static async start(
    dir: string,
    opts: { config: StorageControllerConfig; log: LogFn },
  ): Promise<StorageController> {
    const sc = new StorageController(opts.config, StorageControllerState.open(dir), opts.log)
    sc.listener = await listen(
      routerServer(sc.router(), opts.log),
      opts.config.listenHttpAddr,
      'storage controller HTTP API',
    )
    opts.log('info', 'storage controller started', {
      http: `${opts.config.listenHttpAddr.host}:${sc.listener.port}`,
      state: sc.state.file,
      tenants: sc.state.list().length,
    })
    return sc
  }

  /** The bound port (the configured one, or the one the OS chose for port 0). */
  get port(): number {
    return this.listener?.port ?? this.config.listenHttpAddr.port
  }

  async stop(): Promise<void> {
    await this.listener?.close()
    this.listener = null
    this.log('info', 'storage controller stopped')
  }

  /** The tenant's placement, which the request that calls this has just made or changed. */
  private placement(tenantId: string): PlacementInfo {
    const id = parseId(tenantId, 'tenant')
    return { tenant_id: id, ...this.state.get(id)! }
  }

  private router(): Router {
    const r = new Router()
    const count = (route: string) => this.requests.inc(1, { route })
    r.on('GET', '/v1/status', () => {
      count('status')
      return { json: { tenants: this.state.list().length } }
    })
    r.on('GET', '/metrics', () => ({ text: this.metrics.render(), contentType: 'text/plain; version=0.0.4' }))

    r.on('POST', '/upcall/v1/re-attach', ({ body }) => {
      count('re-attach')
      const node = checkNodeId(objectBody(body, false).node_id)
      const tenants = this.state.reAttach(node)
      for (const t of tenants)
        this.log('info', 'generation issued', { tenantId: t.id, node, generation: t.gen, by: 're-attach' })
      this.log('info', 'pageserver re-attached', { node, tenants: tenants.length })
      return { json: { tenants } }
    })
    r.on('POST', '/upcall/v1/validate', ({ body }) => {
      count('validate')
      const tenants = this.state.validate(validateRequest(body))
      for (const t of tenants.filter((v) => !v.valid))
        this.log('info', 'stale generation refused', { tenantId: t.id })
      return { json: { tenants } }
    })

    r.on('GET', '/control/v1/tenant', () => {
      count('tenant-list')
      return { json: this.state.list() satisfies PlacementInfo[] }
    })
    r.on('POST', '/control/v1/tenant/:tenant_id/attach', ({ params, body }) => {
      count('attach')
      const b = objectBody(body, false)
      const node = checkNodeId(b.node_id)
      const mode = b.mode === undefined ? undefined : checkMode(b.mode)
      const generation = this.state.attach(params.tenant_id, node, mode)
      const p = this.placement(params.tenant_id)
      this.log('info', 'generation issued', {
        tenantId: p.tenant_id,
        node,
        generation,
        mode: p.mode,
        by: 'attach',
      })
      return { json: p }
    })
    r.on('PUT', '/control/v1/tenant/:tenant_id/mode', ({ params, body }) => {
      count('mode')
      const b = objectBody(body, false)
      this.state.setMode(params.tenant_id, checkNodeId(b.node_id), checkMode(b.mode))
      const p = this.placement(params.tenant_id)
      this.log('info', 'location mode changed', { tenantId: p.tenant_id, node: p.node_id, mode: p.mode })
      return { json: p }
    })
    r.on('DELETE', '/control/v1/tenant/:tenant_id', ({ params }) => {
      count('detach')
      this.state.detach(params.tenant_id)
      this.log('info', 'tenant detached', { tenantId: params.tenant_id })
      return { json: {} }
    })
    return r
  }
}
