/** A safekeeper's management API as the control plane calls it (src/safekeeper/http-api.ts). */
import type { HostPort } from '../lib/host-port.js'
import type {
  SkComputeRequest,
  SkStatusResponse,
  SkTermEntry,
  SkTimelineCreateRequest,
  SkTimelineInfo,
  SkVoteResponse,
} from '../safekeeper/api-types.js'
import { ApiClient } from './http-client.js'

export class SafekeeperClient extends ApiClient {
  constructor(
    addr: HostPort,
    readonly id: number,
  ) {
    super(addr, `safekeeper ${id}`, `start it with \`zenith safekeeper start ${id}\``)
  }

  status(): Promise<SkStatusResponse> {
    return this.request('GET', '/v1/status', undefined, 1000)
  }

  /** Up and the safekeeper it should be: another one on the same port must not pass for it. */
  async isItself(): Promise<boolean> {
    try {
      return (await this.status()).id === this.id
    } catch {
      return false
    }
  }

  timelines(timeoutMs = 2000): Promise<SkTimelineInfo[]> {
    return this.request('GET', '/v1/tenant/timeline', undefined, timeoutMs)
  }

  timeline(tenantId: string, timelineId: string): Promise<SkTimelineInfo> {
    return this.request('GET', `/v1/tenant/${tenantId}/timeline/${timelineId}`, undefined, 2000)
  }

  createTimeline(req: SkTimelineCreateRequest): Promise<SkTimelineInfo> {
    return this.request('POST', '/v1/tenant/timeline', req)
  }

  vote(tenantId: string, timelineId: string, term: number): Promise<SkVoteResponse> {
    return this.request('POST', `/v1/tenant/${tenantId}/timeline/${timelineId}/vote`, { term })
  }

  /** The election's outcome for a voter: the elected term's history (safekeeper/timeline.ts adoptTerm). */
  elected(
    tenantId: string,
    timelineId: string,
    term: number,
    termHistory: SkTermEntry[],
  ): Promise<SkTimelineInfo> {
    return this.request('POST', `/v1/tenant/${tenantId}/timeline/${timelineId}/elected`, {
      term,
      term_history: termHistory,
    })
  }

  setCompute(
    tenantId: string,
    timelineId: string,
    connstr: string,
    term: number,
    termHistory: SkTermEntry[],
  ): Promise<SkTimelineInfo> {
    return this.request('PUT', `/v1/tenant/${tenantId}/timeline/${timelineId}/compute`, {
      connstr,
      term,
      term_history: termHistory,
    } satisfies SkComputeRequest)
  }
}
