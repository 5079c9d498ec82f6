/**
 * Which pageserver serves a tenant. The storage controller attaches every tenant to one pageserver (its
 * state file says which, and is read here without the controller running, since a stopped cluster's
 * commands need the answer too); a tenant it does not know, in a repo dir made before it existed, is
 * on the first pageserver.
 */
import type { PageserverConfig } from '../pageserver/config.js'
import { FIRST_PAGESERVER, pageserverConfigOf, pageserverLogFile } from './layout.js'
import { PageserverClient } from './pageserver-client.js'
import { storageControllerStateFile } from './storage-controller-process.js'
import { readControllerState } from './storage-controller-state.js'

/**
 * Which pageserver holds each tenant, from one read of the controller's state: for a caller that asks
 * about many tenants at once (the dashboard, every refresh).
 */
export function tenantPlacements(repoDir: string): (tenantId: string) => number {
  const state = readControllerState(storageControllerStateFile(repoDir))
  return (tenantId) => state.get(tenantId)?.node_id ?? FIRST_PAGESERVER
}

export const tenantPageserverId = (repoDir: string, tenantId: string): number =>
  tenantPlacements(repoDir)(tenantId)

/** The pageserver of a tenant, as the commands that work on the tenant need it. */
export interface TenantPageserver {
  id: number
  config: PageserverConfig
  client: PageserverClient
  logFile: string
}

export function tenantPageserver(repoDir: string, tenantId: string): TenantPageserver {
  const id = tenantPageserverId(repoDir, tenantId)
  const config = pageserverConfigOf(repoDir, id)
  return {
    id,
    config,
    client: new PageserverClient(config.listenHttpAddr),
    logFile: pageserverLogFile(repoDir, id),
  }
}

export const tenantPageserverClient = (repoDir: string, tenantId: string): PageserverClient =>
  tenantPageserver(repoDir, tenantId).client
