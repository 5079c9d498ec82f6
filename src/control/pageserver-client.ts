/** The pageserver's management API as the control plane calls it (docs/http-api.md). */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { HostPort } from '../lib/host-port.js'
import type {
  CheckpointResult,
  ErrorBody,
  TenantConfigFields,
  TenantConfigInfo,
  TenantInfo,
  TimelineCreateRequest,
  TimelineInfo,
} from '../pageserver/api-types.js'
import { kindOfStatus } from '../protocol/http-router.js'

export class PageserverApiError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'PageserverApiError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    // The pageserver said what kind of failure it was with the status; the CLI then reports it as such.
    super(message, { kind: kindOfStatus(status) })
  }
}

export class PageserverUnreachableError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'PageserverUnreachableError'
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
      throw new PageserverUnreachableError(`the pageserver is not reachable at ${this.base} (${cause})`, {
        hint: 'start it with `zenith start`',
      })
    }
    const text = await res.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (!res.ok) {
      const msg = (json as Partial<ErrorBody> | undefined)?.msg ?? text.trim()
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

  createTenant(tenantId: string, config: TenantConfigFields = {}): Promise<string> {
    return this.request('POST', '/v1/tenant', { new_tenant_id: tenantId, ...config })
  }

  tenantConfig(tenantId: string): Promise<TenantConfigInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/config`)
  }

  patchTenantConfig(tenantId: string, patch: TenantConfigFields): Promise<TenantConfigInfo> {
    return this.request('PATCH', `/v1/tenant/${tenantId}/config`, patch)
  }

  timelines(tenantId: string): Promise<TimelineInfo[]> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline`)
  }

  timeline(tenantId: string, timelineId: string): Promise<TimelineInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`)
  }

  createTimeline(tenantId: string, req: TimelineCreateRequest): Promise<TimelineInfo> {
    return this.request('POST', `/v1/tenant/${tenantId}/timeline`, req)
  }

  checkpoint(tenantId: string, timelineId: string): Promise<CheckpointResult> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/checkpoint?compact=false`)
  }

  setWalSource(tenantId: string, timelineId: string, connstr: string | null): Promise<TimelineInfo> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/wal_receiver`, {
      wal_source_connstr: connstr,
    })
  }
}
