/**
 * The local cluster's repo directory (`./.zenith`, `--repo-dir` or `$ZENITH_REPO_DIR`) and its `config`
 * file: the Postgres installation, the default tenant, branch names (per tenant, name → timeline id)
 * and compute endpoints. Each pageserver's own settings live in its `pageserver.toml`.
 *
 *     pg_distrib_dir = "/usr/lib/postgresql/15"
 *     default_tenant_id = "9e4c…"
 *     compute_port_base = 55432
 *     safekeepers = [1, 2, 3]  # their ids; each one's settings are in safekeepers/sk<id>/safekeeper.toml
 *     pageservers = [1, 2]     # their ids; 1's settings are in pageserver/, N's in pageserver_N/
 *
 *     [branches.9e4c…]
 *     main = "d1a0…"
 *
 *     [endpoints.main]
 *     tenant_id = "9e4c…"
 *     branch = "main"
 *     timeline_id = "d1a0…"
 *     port = 55432
 *     lsn = "0/16B3748"        # only for a read-only endpoint fixed at an LSN
 *     settings = { work_mem = "8MB" }
 */

import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { parseId } from '../lib/ids.js'
import { parseLsn } from '../postgres/lsn.js'
import { DEFAULT_PG_DISTRIB_DIR } from '../postgres/pg-bin.js'

export const CONFIG_FILE = 'config'
export const DEFAULT_REPO_DIR = '.zenith'
export const DEFAULT_COMPUTE_PORT_BASE = 55432
export const DEFAULT_BRANCH = 'main'

export interface EndpointSpec {
  tenantId: string
  branch: string
  timelineId: string
  port: number
  /** A read-only endpoint showing the branch as of this LSN ("X/X"). */
  lsn?: string
  settings: Record<string, string>
}

export interface ClusterConfig {
  pgDistribDir: string
  defaultTenantId: string | null
  computePortBase: number
  /** The safekeepers' ids, ascending; none in a config written before safekeepers were. */
  safekeepers: number[]
  /** The pageservers' ids, ascending: [1] until `zenith pageserver start 2` adds one. */
  pageservers: number[]
  /** tenant id → branch name → timeline id */
  branches: Record<string, Record<string, string>>
  endpoints: Record<string, EndpointSpec>
}

export class RepoConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'RepoConfigError'
}

/** The repo dir to use: the flag, else $ZENITH_REPO_DIR, else ./.zenith — always absolute. */
export function resolveRepoDir(flag?: string): string {
  return path.resolve(flag ?? process.env.ZENITH_REPO_DIR ?? DEFAULT_REPO_DIR)
}

export function isInitialised(repoDir: string): boolean {
  return existsSync(path.join(repoDir, CONFIG_FILE))
}

export function newClusterConfig(
  opts: { pgDistribDir?: string; computePortBase?: number; safekeepers?: number[] } = {},
): ClusterConfig {
  return {
    pgDistribDir: opts.pgDistribDir ?? process.env.ZENITH_PG_DISTRIB_DIR ?? DEFAULT_PG_DISTRIB_DIR,
    defaultTenantId: null,
    computePortBase: opts.computePortBase ?? DEFAULT_COMPUTE_PORT_BASE,
    safekeepers: opts.safekeepers ?? [],
    pageservers: [1],
    branches: {},
    endpoints: {},
  }
}

/** Names of branches and endpoints: what a shell and a directory name take without quoting. */
export function checkName(name: string, what: 'branch' | 'endpoint'): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    throw new RepoConfigError(
      `invalid ${what} name "${name}": use letters, digits, '_', '.' and '-' (up to 63, starting with a letter or digit)`,
    )
  }
  return name
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new RepoConfigError(`${where} must be a string`)
  return v
}

function port(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    throw new RepoConfigError(`${where} must be a port number in 1..65535`)
  return v
}

/** A list of distinct server ids in 1..99, ascending; `absent` when the config has none. */
function serverIds(v: unknown, what: 'safekeeper' | 'pageserver', absent: number[]): number[] {
  if (v === undefined) return absent
  if (
    !Array.isArray(v) ||
    v.some((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 99) ||
    new Set(v).size !== v.length ||
    (what === 'pageserver' && !v.includes(1))
  )
    throw new RepoConfigError(
      `${what}s must be a list of distinct ${what} ids in 1..99${what === 'pageserver' ? ', with 1' : ''}`,
    )
  return [...(v as number[])].sort((a, b) => a - b)
}

function table(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined) return {}
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new RepoConfigError(`${where} must be a table`)
  return v as Record<string, unknown>
}

export function parseClusterConfig(doc: Record<string, unknown>): ClusterConfig {
  const branches: ClusterConfig['branches'] = {}
  for (const [tenant, names] of Object.entries(table(doc.branches, 'branches'))) {
    const tid = parseId(tenant, 'tenant')
    branches[tid] = {}
    for (const [name, tl] of Object.entries(table(names, `branches.${tenant}`))) {
      branches[tid][checkName(name, 'branch')] = parseId(str(tl, `branches.${tenant}.${name}`), 'timeline')
    }
  }
  const endpoints: ClusterConfig['endpoints'] = {}
  for (const [name, raw] of Object.entries(table(doc.endpoints, 'endpoints'))) {
    const e = table(raw, `endpoints.${name}`)
    const at = `endpoints.${name}`
    const lsn = e.lsn === undefined ? undefined : str(e.lsn, `${at}.lsn`)
    if (lsn !== undefined) parseLsn(lsn)
    const settings: Record<string, string> = {}
    for (const [k, v] of Object.entries(table(e.settings, `${at}.settings`)))
      settings[k] = str(v, `${at}.settings.${k}`)
    endpoints[checkName(name, 'endpoint')] = {
      tenantId: parseId(str(e.tenant_id, `${at}.tenant_id`), 'tenant'),
      branch: str(e.branch, `${at}.branch`),
      timelineId: parseId(str(e.timeline_id, `${at}.timeline_id`), 'timeline'),
      port: port(e.port, `${at}.port`),
      ...(lsn === undefined ? {} : { lsn }),
      settings,
    }
  }
  return {
    pgDistribDir:
      doc.pg_distrib_dir === undefined ? DEFAULT_PG_DISTRIB_DIR : str(doc.pg_distrib_dir, 'pg_distrib_dir'),
    defaultTenantId:
      doc.default_tenant_id === undefined
        ? null
        : parseId(str(doc.default_tenant_id, 'default_tenant_id'), 'tenant'),
    computePortBase:
      doc.compute_port_base === undefined
        ? DEFAULT_COMPUTE_PORT_BASE
        : port(doc.compute_port_base, 'compute_port_base'),
    safekeepers: serverIds(doc.safekeepers, 'safekeeper', []),
    pageservers: serverIds(doc.pageservers, 'pageserver', [1]),
    branches,
    endpoints,
  }
}

export function loadClusterConfig(repoDir: string): ClusterConfig {
  const file = path.join(repoDir, CONFIG_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RepoConfigError(
        `${repoDir} is not a zenith repo dir (no ${CONFIG_FILE}); run \`zenith init\` first`,
      )
    }
    throw new RepoConfigError(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return parseClusterConfig(parseToml(text))
  } catch (err) {
    if (err instanceof TomlError)
      throw new RepoConfigError(`${file}:${err.line}:${err.column}: not valid TOML`)
    throw new RepoConfigError(`${file}: ${(err as Error).message}`)
  }
}

export function saveClusterConfig(repoDir: string, c: ClusterConfig): void {
  const doc: Record<string, unknown> = {
    pg_distrib_dir: c.pgDistribDir,
    compute_port_base: c.computePortBase,
    safekeepers: c.safekeepers,
    pageservers: c.pageservers,
  }
  if (c.defaultTenantId) doc.default_tenant_id = c.defaultTenantId
  doc.branches = c.branches
  doc.endpoints = Object.fromEntries(
    Object.entries(c.endpoints).map(([name, e]) => [
      name,
      {
        tenant_id: e.tenantId,
        branch: e.branch,
        timeline_id: e.timelineId,
        port: e.port,
        ...(e.lsn === undefined ? {} : { lsn: e.lsn }),
        settings: e.settings,
      },
    ]),
  )
  writeFileDurable(path.join(repoDir, CONFIG_FILE), `# zenith local cluster\n${stringifyToml(doc)}\n`)
}

/** The tenant a command works on: the flag's, else the default one. */
export function tenantOf(c: ClusterConfig, flag?: string): string {
  if (flag !== undefined) return parseId(flag, 'tenant')
  if (!c.defaultTenantId)
    throw new RepoConfigError('no default tenant', {
      kind: 'not_found',
      hint: 'pass --tenant-id, or create one with `zenith tenant create --set-default`',
    })
  return c.defaultTenantId
}

export function timelineOfBranch(c: ClusterConfig, tenantId: string, branch: string): string {
  const id = c.branches[tenantId]?.[branch]
  if (!id) {
    const known = Object.keys(c.branches[tenantId] ?? {})
    throw new RepoConfigError(
      `unknown branch "${branch}" in tenant ${tenantId}${known.length ? `; branches: ${known.join(', ')}` : ''}`,
      { kind: 'not_found' },
    )
  }
  return id
}

export function branchOfTimeline(c: ClusterConfig, tenantId: string, timelineId: string): string | null {
  for (const [name, id] of Object.entries(c.branches[tenantId] ?? {})) if (id === timelineId) return name
  return null
}

/** The pageserver `id` names, checked against the config. */
export function pageserverOf(c: ClusterConfig, id: number): number {
  if (!c.pageservers.includes(id)) {
    throw new RepoConfigError(`unknown pageserver ${id}; pageservers: ${c.pageservers.join(', ')}`, {
      kind: 'not_found',
      hint: '`zenith pageserver start <id>` adds one',
    })
  }
  return id
}

/** The safekeeper `id` names, checked against the config; without one, every safekeeper. */
export function safekeepersOf(c: ClusterConfig, id?: number): number[] {
  if (id === undefined) return c.safekeepers
  if (!c.safekeepers.includes(id)) {
    throw new RepoConfigError(
      c.safekeepers.length === 0
        ? `unknown safekeeper ${id}: the cluster has no safekeepers`
        : `unknown safekeeper ${id}; safekeepers: ${c.safekeepers.join(', ')}`,
      { kind: 'not_found' },
    )
  }
  return [id]
}
