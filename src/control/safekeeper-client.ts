/** A safekeeper's management API as the control plane calls it (src/safekeeper/http-api.ts). */
import type { HostPort } from '../lib/host-port.js'
import type { SkStatusResponse, SkTimelineInfo } from '../safekeeper/api-types.js'
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

  timelines(): Promise<SkTimelineInfo[]> {
    return this.request('GET', '/v1/tenant/timeline')
  }
}
