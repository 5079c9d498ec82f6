/** The storage controller's control API as the CLI calls it (src/control/storage-controller.ts). */

import type { LocationMode } from '../engine/location.js'
import type { HostPort } from '../lib/host-port.js'
import { ApiClient } from './http-client.js'
import type { PlacementInfo } from './storage-controller.js'

export class StorageControllerClient extends ApiClient {
  constructor(addr: HostPort) {
    super(addr, 'the storage controller', 'start it with `zenith start` or `zenith storage-controller start`')
  }

  tenants(timeoutMs?: number): Promise<PlacementInfo[]> {
    return this.request('GET', '/control/v1/tenant', undefined, timeoutMs)
  }

  /** A new generation for the tenant on pageserver `nodeId`. */
  attach(tenantId: string, nodeId: number, mode?: LocationMode): Promise<PlacementInfo> {
    return this.request('POST', `/control/v1/tenant/${tenantId}/attach`, {
      node_id: nodeId,
      ...(mode === undefined ? {} : { mode }),
    })
  }

  setMode(tenantId: string, nodeId: number, mode: LocationMode): Promise<PlacementInfo> {
    return this.request('PUT', `/control/v1/tenant/${tenantId}/mode`, { node_id: nodeId, mode })
  }

  async detach(tenantId: string): Promise<void> {
    await this.request('DELETE', `/control/v1/tenant/${tenantId}`)
  }
}
