/** Where things live in the repo dir: each pageserver's and each safekeeper's files, each endpoint's datadir and log. */
import path from 'node:path'
import { loadPageserverConfig, PAGESERVER_CONFIG_FILE, type PageserverConfig } from '../pageserver/config.js'
import { loadSafekeeperConfig, SAFEKEEPER_CONFIG_FILE, type SafekeeperConfig } from '../safekeeper/config.js'
import { PageserverClient } from './pageserver-client.js'
import { SafekeeperClient } from './safekeeper-client.js'

/** The first pageserver, the one `zenith init` makes; `zenith pageserver start N` adds the others. */
export const FIRST_PAGESERVER = 1

/**
 * A pageserver's working directory: `pageserver/` for the first (as before there were several), then
 * `pageserver_2/`, `pageserver_3/`, …
 */
export const pageserverDir = (repoDir: string, id: number) =>
  path.join(repoDir, id === FIRST_PAGESERVER ? 'pageserver' : `pageserver_${id}`)
export const pageserverPidFile = (repoDir: string, id: number) =>
  path.join(pageserverDir(repoDir, id), 'pageserver.pid')
export const pageserverLogFile = (repoDir: string, id: number) =>
  path.join(pageserverDir(repoDir, id), 'pageserver.log')
export const pageserverConfigFile = (repoDir: string, id: number) =>
  path.join(pageserverDir(repoDir, id), PAGESERVER_CONFIG_FILE)

/** Remote storage of a cluster made by `zenith init` without --remote-storage. */
export const defaultRemoteStorageDir = (repoDir: string) => path.join(repoDir, 'remote_storage')

/** A safekeeper's working directory: its config, pid file, log and timelines. */
export const safekeepersDir = (repoDir: string) => path.join(repoDir, 'safekeepers')
export const safekeeperDir = (repoDir: string, id: number) => path.join(safekeepersDir(repoDir), `sk${id}`)
export const safekeeperPidFile = (repoDir: string, id: number) =>
  path.join(safekeeperDir(repoDir, id), 'safekeeper.pid')
export const safekeeperLogFile = (repoDir: string, id: number) =>
  path.join(safekeeperDir(repoDir, id), 'safekeeper.log')
export const safekeeperConfigFile = (repoDir: string, id: number) =>
  path.join(safekeeperDir(repoDir, id), SAFEKEEPER_CONFIG_FILE)

export const endpointDir = (repoDir: string, tenantId: string, name: string) =>
  path.join(repoDir, 'pgdatadirs', 'tenants', tenantId, name)
export const endpointDataDir = (repoDir: string, tenantId: string, name: string) =>
  path.join(endpointDir(repoDir, tenantId, name), 'pgdata')
export const endpointLogFile = (repoDir: string, tenantId: string, name: string) =>
  path.join(endpointDir(repoDir, tenantId, name), 'compute.log')

export function pageserverConfigOf(repoDir: string, id: number): PageserverConfig {
  return loadPageserverConfig(pageserverConfigFile(repoDir, id))
}

export function pageserverClientOf(repoDir: string, id: number): PageserverClient {
  return new PageserverClient(pageserverConfigOf(repoDir, id).listenHttpAddr)
}

export function safekeeperConfigOf(repoDir: string, id: number): SafekeeperConfig {
  return loadSafekeeperConfig(safekeeperConfigFile(repoDir, id))
}

export function safekeeperClientOf(repoDir: string, id: number): SafekeeperClient {
  return new SafekeeperClient(safekeeperConfigOf(repoDir, id).listenHttpAddr, id)
}
