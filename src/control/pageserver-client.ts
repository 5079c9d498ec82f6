/** The pageserver's management API as the control plane calls it (docs/http-api.md). */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { HostPort } from '../pageserver/config.js'

export class PageserverApiError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'PageserverApiError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export class PageserverUnreachableError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'PageserverUnreachableError'
}

/** TimelineInfo as the API returns it (LSNs as "X/X"). */
export interface TimelineInfo {
  tenant_id: string
  timeline_id: string
  ancestor_timeline_id: string | null
  ancestor_lsn: string | null
  last_record_lsn: string
  prev_record_lsn: string | null
  disk_consistent_lsn: string
  remote_consistent_lsn: string
  latest_gc_cutoff_lsn: string
  initdb_lsn: string
  current_logical_size: number
  state: string
  wal_source_connstr: string | null
  last_received_msg_lsn: string | null
  last_received_msg_ts: number | null
  walreceiver_status: string
  walreceiver_error: string | null
}

export interface TenantInfo {
  id: string
  state: { slug: string }
  current_physical_size: number
}

export interface TenantConfigInfo {
  tenant_specific_overrides: Record<string, number | string>
  effective_config: Record<string, number | string>
}

export class PageserverClient {
  readonly base: string

  constructor(addr: HostPort) {
    this.base = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`
  }

  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.base + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message
      throw new PageserverUnreachableError(
        `the pageserver is not reachable at ${this.base} (${cause}); start it with \`zenith start\``,
      )
    }
    const text = await res.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (!res.ok) {
      const msg = (json as { msg?: string } | undefined)?.msg ?? text.trim()
      throw new PageserverApiError(res.status, msg || `${method} ${path}: HTTP ${res.status}`)
    }
    return json as T
  }

  async isUp(): Promise<boolean> {
    try {
      await this.request('GET', '/v1/status', undefined, 1000)
      return true
    } catch {
      return false
    }
  }

  tenants(): Promise<TenantInfo[]> {
    return this.request('GET', '/v1/tenant')
  }

  createTenant(tenantId: string, config: Record<string, unknown> = {}): Promise<string> {
    return this.request('POST', '/v1/tenant', { new_tenant_id: tenantId, ...config })
  }

  tenantConfig(tenantId: string): Promise<TenantConfigInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/config`)
  }

  patchTenantConfig(tenantId: string, patch: Record<string, unknown>): Promise<TenantConfigInfo> {
    return this.request('PATCH', `/v1/tenant/${tenantId}/config`, patch)
  }

  timelines(tenantId: string): Promise<TimelineInfo[]> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline`)
  }

  timeline(tenantId: string, timelineId: string): Promise<TimelineInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)
  }

  createTimeline(
    tenantId: string,
    req: { new_timeline_id: string; ancestor_timeline_id?: string; ancestor_start_lsn?: string },
  ): Promise<TimelineInfo> {
    return this.request('POST', `/v1/tenant/${tenantId}/timeline`, req)
  }

  checkpoint(tenantId: string, timelineId: string): Promise<void> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/checkpoint?compact=false`)
  }

  setWalSource(tenantId: string, timelineId: string, connstr: string | null): Promise<TimelineInfo> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
      wal_source_connstr: connstr,
    })
  }
}
