/**
 * The pageserver's own settings, from `pageserver.toml` in its working directory (Neon's names):
 *
 *     listen_pg_addr = "127.0.0.1:64000"     libpq page service
 *     listen_http_addr = "127.0.0.1:9898"    management API
 *     pg_distrib_dir = "/usr/lib/postgresql/15"   initdb for new timelines
 *     wait_lsn_timeout = "1 m"              how long a request for a future LSN waits
 *     page_cache_size = 8192                 8 KiB pages
 *     memory_budget = 134217728              bytes of open in-memory layers
 *     log_level = "info"                     debug, info, warn or error: lines below it are dropped
 *     remote_storage = { local_path = "…" }  or { bucket = "…", prefix = "…", … }: remote-storage-config.ts
 *     id = 1                                 its node id at the storage controller
 *     control_plane_api = "http://127.0.0.1:1234/upcall/v1/"   the controller's upcalls (both or neither)
 *     [tenant_config]                        defaults for every tenant (tenant config keys)
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import { configToJson, overridesFromText, type TenantConfigOverrides } from '../engine/tenant-config.js'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, type HostPort, parseHostPort } from '../lib/host-port.js'
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../lib/log.js'
import { formatDuration, parseDuration } from '../lib/units.js'
import {
  parseRemoteStorageConfig,
  type RemoteStorageConfig,
  renderRemoteStorageConfig,
} from './remote-storage-config.js'

export const PAGESERVER_CONFIG_FILE = 'pageserver.toml'

export interface PageserverConfig {
  listenPgAddr: HostPort
  listenHttpAddr: HostPort
  pgDistribDir: string
  waitLsnTimeoutMs: number
  pageCacheSize: number
  memoryBudget: number
  logLevel: LogLevel
  /** null: none configured (a pageserver.toml from before remote storage); `zenith init` always sets one. */
  remoteStorage: RemoteStorageConfig | null
  /**
   * The storage controller that issues its generations, and its node id there; null: none (a
   * pageserver.toml from before the controller, or a test's), and every tenant is at generation 1.
   */
  controlPlane: ControlPlaneConfig | null
  tenantDefaults: TenantConfigOverrides
}

export interface ControlPlaneConfig {
  /** The upcall base URL, ending in `/`: re-attach and validate are resolved against it. */
  api: string
  nodeId: number
}

export class PageserverConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'PageserverConfigError'
}

export const DEFAULT_PAGESERVER_CONFIG: PageserverConfig = {
  listenPgAddr: { host: '127.0.0.1', port: 64000 },
  listenHttpAddr: { host: '127.0.0.1', port: 9898 },
  pgDistribDir: '/usr/lib/postgresql/15',
  waitLsnTimeoutMs: 60_000,
  pageCacheSize: 8192,
  memoryBudget: 128 * 1024 * 1024,
  logLevel: 'info',
  remoteStorage: null,
  controlPlane: null,
  tenantDefaults: {},
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new PageserverConfigError(`${what} must be a positive integer, got ${JSON.stringify(v)}`)
  return v
}

/** `baseDir`: where relative paths in it start, the directory of pageserver.toml. */
export function parsePageserverConfig(
  doc: Record<string, unknown>,
  baseDir: string = process.cwd(),
): PageserverConfig {
  const known = new Set([
    'listen_pg_addr',
    'listen_http_addr',
    'pg_distrib_dir',
    'wait_lsn_timeout',
    'page_cache_size',
    'memory_budget',
    'log_level',
    'remote_storage',
    'id',
    'control_plane_api',
    'tenant_config',
  ])
  for (const k of Object.keys(doc)) {
    if (!known.has(k))
      throw new PageserverConfigError(`unknown setting "${k}"; known: ${[...known].join(', ')}`)
  }
  const d = DEFAULT_PAGESERVER_CONFIG
  const str = (k: string): string | undefined => {
    const v = doc[k]
    if (v !== undefined && typeof v !== 'string') throw new PageserverConfigError(`${k} must be a string`)
    return v
  }
  const addr = (k: string, dflt: HostPort) => {
    const v = str(k)
    return v === undefined ? dflt : parseHostPort(v, k)
  }
  const timeout = str('wait_lsn_timeout')
  const logLevel = doc.log_level ?? d.logLevel
  if (!isLogLevel(logLevel)) {
    throw new PageserverConfigError(
      `log_level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    )
  }
  return {
    listenPgAddr: addr('listen_pg_addr', d.listenPgAddr),
    listenHttpAddr: addr('listen_http_addr', d.listenHttpAddr),
    pgDistribDir: str('pg_distrib_dir') ?? d.pgDistribDir,
    waitLsnTimeoutMs: timeout === undefined ? d.waitLsnTimeoutMs : parseDuration(timeout),
    pageCacheSize:
      doc.page_cache_size === undefined
        ? d.pageCacheSize
        : positiveInt(doc.page_cache_size, 'page_cache_size'),
    memoryBudget:
      doc.memory_budget === undefined ? d.memoryBudget : positiveInt(doc.memory_budget, 'memory_budget'),
    logLevel,
    remoteStorage:
      doc.remote_storage === undefined ? null : parseRemoteStorageConfig(doc.remote_storage, baseDir),
    controlPlane: parseControlPlane(str('control_plane_api'), doc.id),
    tenantDefaults: overridesFromText(doc.tenant_config ?? {}),
  }
}

function parseControlPlane(api: string | undefined, id: unknown): ControlPlaneConfig | null {
  if (api === undefined && id === undefined) return null
  if (api === undefined) throw new PageserverConfigError('id needs control_plane_api, the storage controller')
  if (id === undefined)
    throw new PageserverConfigError("control_plane_api needs id, this pageserver's node id")
  let url: URL
  try {
    url = new URL(api)
  } catch {
    throw new PageserverConfigError(`control_plane_api must be an http:// URL, got ${JSON.stringify(api)}`)
  }
  if (url.protocol !== 'http:')
    throw new PageserverConfigError(`control_plane_api must be an http:// URL, got ${JSON.stringify(api)}`)
  return { api: api.endsWith('/') ? api : `${api}/`, nodeId: positiveInt(id, 'id') }
}

export function loadPageserverConfig(file: string): PageserverConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new PageserverConfigError(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return parsePageserverConfig(parseToml(text), path.dirname(path.resolve(file)))
  } catch (err) {
    if (err instanceof TomlError) {
      throw new PageserverConfigError(`${file}:${err.line}:${err.column}: not valid TOML`)
    }
    throw new PageserverConfigError(`${file}: ${(err as Error).message}`)
  }
}

export function renderPageserverConfig(c: PageserverConfig): string {
  const lines = [
    '# zenith pageserver settings',
    `listen_pg_addr = "${formatHostPort(c.listenPgAddr)}"`,
    `listen_http_addr = "${formatHostPort(c.listenHttpAddr)}"`,
    `pg_distrib_dir = ${JSON.stringify(c.pgDistribDir)}`,
    `wait_lsn_timeout = "${formatDuration(c.waitLsnTimeoutMs)}"`,
    `page_cache_size = ${c.pageCacheSize}`,
    `memory_budget = ${c.memoryBudget}`,
    `log_level = "${c.logLevel}"`,
    ...(c.remoteStorage === null ? [] : [renderRemoteStorageConfig(c.remoteStorage)]),
    ...(c.controlPlane === null
      ? []
      : [`id = ${c.controlPlane.nodeId}`, `control_plane_api = ${JSON.stringify(c.controlPlane.api)}`]),
  ]
  const defaults = configToJson(c.tenantDefaults)
  if (Object.keys(defaults).length > 0) {
    lines.push('', '[tenant_config]')
    for (const [k, v] of Object.entries(defaults)) lines.push(`${k} = ${JSON.stringify(v)}`)
  }
  return `${lines.join('\n')}\n`
}

export function savePageserverConfig(file: string, c: PageserverConfig): void {
  writeFileDurable(file, renderPageserverConfig(c))
}
