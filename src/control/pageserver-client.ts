/** The pageserver's management API as the control plane calls it (docs/http-api.md). */
import type { HostPort } from '../lib/host-port.js'
import type {
  CheckpointResult,
  CompactResult,
  GcResult,
  LayerMapInfo,
  LocationConfigRequest,
  TenantConfigFields,
  TenantConfigInfo,
  TenantInfo,
  TimelineCreateRequest,
  TimelineInfo,
  WalContinuation,
  WalReceiverRequest,
} from '../pageserver/api-types.js'
import { ApiClient } from './http-client.js'
import { waitFor } from './process.js'

export class PageserverClient extends ApiClient {
  constructor(addr: HostPort) {
    super(addr, 'the pageserver', 'start it with `zenith start`')
  }

  tenants(timeoutMs?: number): Promise<TenantInfo[]> {
    return this.request('GET', '/v1/tenant', undefined, timeoutMs)
  }

  /** `generation`: the one the storage controller issued for this attach. */
  createTenant(
    tenantId: string,
    opts: { config?: TenantConfigFields; generation?: number } = {},
  ): Promise<string> {
    return this.request('POST', '/v1/tenant', {
      new_tenant_id: tenantId,
      ...opts.config,
      ...(opts.generation === undefined ? {} : { generation: opts.generation }),
    })
  }

  tenantConfig(tenantId: string): Promise<TenantConfigInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/config`)
  }

  patchTenantConfig(tenantId: string, patch: TenantConfigFields): Promise<TenantConfigInfo> {
    return this.request('PATCH', `/v1/tenant/${tenantId}/config`, patch)
  }

  timelines(tenantId: string, timeoutMs?: number): Promise<TimelineInfo[]> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline`, undefined, timeoutMs)
  }

  timeline(tenantId: string, timelineId: string, timeoutMs?: number): Promise<TimelineInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`, undefined, timeoutMs)
  }

  /** What WAL continuing the timeline from its end must carry. */
  walContinuation(tenantId: string, timelineId: string): Promise<WalContinuation> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_continuation`)
  }

  createTimeline(tenantId: string, req: TimelineCreateRequest): Promise<TimelineInfo> {
    return this.request('POST', `/v1/tenant/${tenantId}/timeline`, req)
  }

  /** The timeline's layers, in memory and on disk. */
  layers(tenantId: string, timelineId: string, timeoutMs?: number): Promise<LayerMapInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}/layer`, undefined, timeoutMs)
  }

  /** GET /metrics, the Prometheus text (parseMetrics reads it). */
  metrics(timeoutMs?: number): Promise<string> {
    return this.requestText('/metrics', timeoutMs)
  }

  checkpoint(tenantId: string, timelineId: string): Promise<CheckpointResult> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/checkpoint?compact=false`)
  }

  compact(tenantId: string, timelineId: string, opts: { force?: boolean } = {}): Promise<CompactResult> {
    const q = opts.force ? '?force_l0_compaction=true&force_image_layer_creation=true' : ''
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/compact${q}`)
  }

  /** `gcHorizon` (bytes) instead of the tenant's gc_horizon, for this run only. */
  gc(tenantId: string, timelineId: string, opts: { gcHorizon?: number } = {}): Promise<GcResult> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/do_gc`, {
      ...(opts.gcHorizon === undefined ? {} : { gc_horizon: opts.gcHorizon }),
    })
  }

  /**
   * Neon's declarative attach/detach: the tenant is made to be here in `req.mode` (Detached: not here).
   * `flushMs`: before a change away from AttachedSingle/Multi, wait up to that long for what the tenant
   * holds to be uploaded.
   */
  locationConfig(tenantId: string, req: LocationConfigRequest, flushMs?: number): Promise<TenantInfo | null> {
    const q = flushMs === undefined ? '' : `?flush_ms=${flushMs}`
    return this.request('PUT', `/v1/tenant/${tenantId}/location_config${q}`, req)
  }

  setWalSource(tenantId: string, timelineId: string, connstr: string | null): Promise<TimelineInfo> {
    return this.setWalReceiver(tenantId, timelineId, { wal_source_connstr: connstr })
  }

  /** The timeline follows its safekeepers instead of a compute. */
  setSafekeepers(
    tenantId: string,
    timelineId: string,
    safekeepers: { id: number; pg: string; http: string }[],
  ): Promise<TimelineInfo> {
    return this.setWalReceiver(tenantId, timelineId, { safekeepers })
  }

  private setWalReceiver(
    tenantId: string,
    timelineId: string,
    body: WalReceiverRequest,
  ): Promise<TimelineInfo> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, body)
  }
}

/**
 * Polls a timeline's WAL receiver, just pointed at a source, until it streams or is broken (the source
 * lacks the WAL the timeline needs): `settled` false when it did neither within `timeoutMs`.
 */
export async function settleWalReceiver(
  ps: PageserverClient,
  tenantId: string,
  timelineId: string,
  timeoutMs: number,
): Promise<{ settled: boolean; status: string; error: string | null }> {
  let status = ''
  let error: string | null = null
  const settled = await waitFor(async () => {
    const t = await ps.timeline(tenantId, timelineId)
    error = t.walreceiver_error
    status = t.walreceiver_status
    return status === 'streaming' || status === 'broken'
  }, timeoutMs)
  return { settled, status, error }
}
