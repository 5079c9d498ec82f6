/** Where things live in the repo dir: the pageserver's files, and each endpoint's datadir and log. */
import path from 'node:path'
import { loadPageserverConfig, PAGESERVER_CONFIG_FILE, type PageserverConfig } from '../pageserver/config.js'
import { PageserverClient } from './pageserver-client.js'

export const pageserverDir = (repoDir: string) => path.join(repoDir, 'pageserver')
export const pageserverPidFile = (repoDir: string) => path.join(pageserverDir(repoDir), 'pageserver.pid')
export const pageserverLogFile = (repoDir: string) => path.join(pageserverDir(repoDir), 'pageserver.log')
export const pageserverConfigFile = (repoDir: string) =>
  path.join(pageserverDir(repoDir), PAGESERVER_CONFIG_FILE)

export const endpointDir = (repoDir: string, tenantId: string, name: string) =>
  path.join(repoDir, 'pgdatadirs', 'tenants', tenantId, name)
export const endpointDataDir = (repoDir: string, tenantId: string, name: string) =>
  path.join(endpointDir(repoDir, tenantId, name), 'pgdata')
export const endpointLogFile = (repoDir: string, tenantId: string, name: string) =>
  path.join(endpointDir(repoDir, tenantId, name), 'compute.log')

export function pageserverConfigOf(repoDir: string): PageserverConfig {
  return loadPageserverConfig(pageserverConfigFile(repoDir))
}

export function pageserverClientOf(repoDir: string): PageserverClient {
  return new PageserverClient(pageserverConfigOf(repoDir).listenHttpAddr)
}
