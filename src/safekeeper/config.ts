/**
 * A safekeeper's settings, from `safekeeper.toml` in its working directory:
 *
 *     id = 1                                  its number in the cluster: sk1 in synchronous_standby_names
 *     listen_pg_addr = "127.0.0.1:5455"       libpq: the walsender side, for the pageserver and peers
 *     listen_http_addr = "127.0.0.1:7677"     management API
 *     peers = ["127.0.0.1:7678"]              the other safekeepers' HTTP APIs, for commit_lsn
 *     max_replication_write_lag = 15728640    bytes the pageserver may lag behind commit_lsn (0: no limit)
 *     max_replication_flush_lag = 0           bytes its disk_consistent_lsn may lag (0: no limit)
 *     log_level = "info"
 *
 * Ports default to Neon's local layout: 5454 + id and 7676 + id.
 */
import { readFileSync } from 'node:fs'
import { parse as parseToml, TomlError } from 'smol-toml'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, type HostPort, parseHostPort } from '../lib/host-port.js'
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../lib/log.js'

export const SAFEKEEPER_CONFIG_FILE = 'safekeeper.toml'
export const PG_PORT_BASE = 5454
export const HTTP_PORT_BASE = 7676
const MiB = 1024 * 1024

export interface SafekeeperConfig {
  id: number
  listenPgAddr: HostPort
  listenHttpAddr: HostPort
  peers: HostPort[]
  maxReplicationWriteLag: number
  maxReplicationFlushLag: number
  logLevel: LogLevel
}

export class SafekeeperConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'SafekeeperConfigError'
}

/** The application_name a safekeeper connects to its compute with, as synchronous_standby_names lists it. */
export const applicationNameOf = (id: number): string => `sk${id}`

/**
 * The custom setting in which a compute started for a term names it, for its safekeepers to check: its
 * address alone does not tell one term's compute from the next.
 */
export const COMPUTE_TERM_SETTING = 'zenith.term'

export function defaultSafekeeperConfig(id: number): SafekeeperConfig {
  return {
    id,
    listenPgAddr: { host: '127.0.0.1', port: PG_PORT_BASE + id },
    listenHttpAddr: { host: '127.0.0.1', port: HTTP_PORT_BASE + id },
    peers: [],
    maxReplicationWriteLag: 15 * MiB,
    maxReplicationFlushLag: 0,
    logLevel: 'info',
  }
}

const KNOWN = [
  'id',
  'listen_pg_addr',
  'listen_http_addr',
  'peers',
  'max_replication_write_lag',
  'max_replication_flush_lag',
  'log_level',
]

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new SafekeeperConfigError(`${what} must be a non-negative integer, got ${JSON.stringify(v)}`)
  return v
}

export function parseSafekeeperConfig(doc: Record<string, unknown>): SafekeeperConfig {
  for (const k of Object.keys(doc)) {
    if (!KNOWN.includes(k))
      throw new SafekeeperConfigError(`unknown setting "${k}"; known: ${KNOWN.join(', ')}`)
  }
  const id = nonNegativeInt(doc.id, 'id')
  if (id < 1 || id > 99) throw new SafekeeperConfigError(`id must be in 1..99, got ${id}`)
  const d = defaultSafekeeperConfig(id)
  const addr = (k: string, dflt: HostPort): HostPort => {
    const v = doc[k]
    if (v === undefined) return dflt
    if (typeof v !== 'string') throw new SafekeeperConfigError(`${k} must be a string "host:port"`)
    return parseHostPort(v, k)
  }
  const peers = doc.peers ?? []
  if (!Array.isArray(peers) || peers.some((p) => typeof p !== 'string'))
    throw new SafekeeperConfigError('peers must be a list of "host:port" strings')
  const logLevel = doc.log_level ?? d.logLevel
  if (!isLogLevel(logLevel)) {
    throw new SafekeeperConfigError(
      `log_level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    )
  }
  const lag = (k: string, dflt: number) => (doc[k] === undefined ? dflt : nonNegativeInt(doc[k], k))
  return {
    id,
    listenPgAddr: addr('listen_pg_addr', d.listenPgAddr),
    listenHttpAddr: addr('listen_http_addr', d.listenHttpAddr),
    peers: (peers as string[]).map((p, i) => parseHostPort(p, `peers[${i}]`)),
    maxReplicationWriteLag: lag('max_replication_write_lag', d.maxReplicationWriteLag),
    maxReplicationFlushLag: lag('max_replication_flush_lag', d.maxReplicationFlushLag),
    logLevel,
  }
}

export function loadSafekeeperConfig(file: string): SafekeeperConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SafekeeperConfigError(`cannot read ${file}: ${(err as Error).message}`)
  }
  try {
    return parseSafekeeperConfig(parseToml(text))
  } catch (err) {
    if (err instanceof TomlError)
      throw new SafekeeperConfigError(`${file}:${err.line}:${err.column}: not valid TOML`)
    throw new SafekeeperConfigError(`${file}: ${(err as Error).message}`)
  }
}

export function renderSafekeeperConfig(c: SafekeeperConfig): string {
  return `${[
    `# zenith safekeeper ${c.id} settings`,
    `id = ${c.id}`,
    `listen_pg_addr = "${formatHostPort(c.listenPgAddr)}"`,
    `listen_http_addr = "${formatHostPort(c.listenHttpAddr)}"`,
    `peers = [${c.peers.map((p) => `"${formatHostPort(p)}"`).join(', ')}]`,
    `max_replication_write_lag = ${c.maxReplicationWriteLag}`,
    `max_replication_flush_lag = ${c.maxReplicationFlushLag}`,
    `log_level = "${c.logLevel}"`,
  ].join('\n')}\n`
}

export function saveSafekeeperConfig(file: string, c: SafekeeperConfig): void {
  writeFileDurable(file, renderSafekeeperConfig(c))
}
