/**
 * The safekeepers of the local cluster as processes (src/control/server-process.ts, as the pageserver
 * runs): each one's state under `<repo>/safekeepers/sk<N>/` (safekeeper.toml, safekeeper.pid,
 * safekeeper.log and its timelines), started detached as `zenith safekeeper run <N>` and ready once its
 * HTTP API answers as safekeeper N, or run inside this process by `zenith start --embedded`.
 *
 * The cluster config records which safekeepers exist; their ports and peers live in their own
 * safekeeper.toml, written once by `zenith init`.
 */
import { mkdirSync } from 'node:fs'
import { formatHostPort } from '../lib/host-port.js'
import {
  defaultSafekeeperConfig,
  HTTP_PORT_BASE,
  PG_PORT_BASE,
  type SafekeeperConfig,
  saveSafekeeperConfig,
} from '../safekeeper/config.js'
import { Safekeeper } from '../safekeeper/safekeeper.js'
import {
  safekeeperClientOf,
  safekeeperConfigFile,
  safekeeperConfigOf,
  safekeeperDir,
  safekeeperLogFile,
  safekeeperPidFile,
} from './layout.js'
import { stopByPidFile } from './process.js'
import { loadClusterConfig, safekeepersOf } from './repo-config.js'
import {
  type RunningServer,
  runServer,
  type ServerFiles,
  type ServerState,
  serverState,
  startServer,
} from './server-process.js'

/** Quorums of a majority that survive 0, 1 or 2 lost safekeepers; 2 or 4 would add none over 1 or 3. */
export const SAFEKEEPER_COUNTS = [0, 1, 3, 5] as const
export type SafekeeperCount = (typeof SAFEKEEPER_COUNTS)[number]

export interface SafekeeperPortBases {
  /** Safekeeper N listens for libpq on pgPortBase + N and for HTTP on httpPortBase + N. */
  pgPortBase?: number
  httpPortBase?: number
}

/** The configs of safekeepers 1..count, each with the others' HTTP APIs as its peers. */
export function safekeeperConfigs(
  count: SafekeeperCount,
  bases: SafekeeperPortBases = {},
): SafekeeperConfig[] {
  const pgBase = bases.pgPortBase ?? PG_PORT_BASE
  const httpBase = bases.httpPortBase ?? HTTP_PORT_BASE
  const ids = Array.from({ length: count }, (_, i) => i + 1)
  const httpAddr = (id: number) => ({ host: '127.0.0.1', port: httpBase + id })
  return ids.map((id) => ({
    ...defaultSafekeeperConfig(id),
    listenPgAddr: { host: '127.0.0.1', port: pgBase + id },
    listenHttpAddr: httpAddr(id),
    peers: ids.filter((p) => p !== id).map(httpAddr),
  }))
}

/** Writes each config as `safekeepers/sk<N>/safekeeper.toml`. */
export function writeSafekeeperConfigs(repoDir: string, configs: readonly SafekeeperConfig[]): void {
  for (const c of configs) {
    mkdirSync(safekeeperDir(repoDir, c.id), { recursive: true })
    saveSafekeeperConfig(safekeeperConfigFile(repoDir, c.id), c)
  }
}

/** The safekeepers `id` names: that one (checked against the cluster config), else all of them. */
export function safekeeperIds(repoDir: string, id?: number): number[] {
  return safekeepersOf(loadClusterConfig(repoDir), id)
}

export const safekeeperFiles = (repoDir: string, id: number): ServerFiles => ({
  name: `safekeeper ${id}`,
  pidFile: safekeeperPidFile(repoDir, id),
  logFile: safekeeperLogFile(repoDir, id),
})

export interface SafekeeperStatus extends ServerState {
  id: number
  http: string
  pg: string
  http_port: number
  pg_port: number
  /** The HTTP API answers, as this safekeeper. */
  reachable: boolean
}

export async function safekeeperStatus(repoDir: string, id: number): Promise<SafekeeperStatus> {
  const cfg = safekeeperConfigOf(repoDir, id)
  const { state, running, pid, log_file, last_log_lines } = serverState(safekeeperFiles(repoDir, id))
  return {
    id,
    state,
    running,
    pid,
    http: formatHostPort(cfg.listenHttpAddr),
    pg: formatHostPort(cfg.listenPgAddr),
    http_port: cfg.listenHttpAddr.port,
    pg_port: cfg.listenPgAddr.port,
    reachable: running && (await safekeeperClientOf(repoDir, id).isItself()),
    log_file,
    ...(last_log_lines ? { last_log_lines } : {}),
  }
}

/** Starts safekeeper `id` as a detached process; a running one is left alone. */
export async function startSafekeeper(
  repoDir: string,
  id: number,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const cfg = safekeeperConfigOf(repoDir, id)
  const client = safekeeperClientOf(repoDir, id)
  return startServer({
    ...safekeeperFiles(repoDir, id),
    zenithArgs: ['safekeeper', 'run', String(id), '--repo-dir', repoDir],
    ports: [
      { what: 'HTTP API', addr: cfg.listenHttpAddr },
      { what: 'libpq', addr: cfg.listenPgAddr },
    ],
    configFile: safekeeperConfigFile(repoDir, id),
    ready: () => client.isItself(),
    timeoutMs: 30_000,
  })
}

/** SIGTERM lets it write its control files; `immediate` kills it (what it acknowledged is fsynced). */
export async function stopSafekeeper(repoDir: string, id: number, opts: { immediate?: boolean } = {}) {
  return stopByPidFile({
    pidFile: safekeeperPidFile(repoDir, id),
    name: `safekeeper ${id}`,
    signal: opts.immediate ? 'SIGKILL' : 'SIGTERM',
    timeoutMs: 30_000,
  })
}

/** Runs safekeeper `id` in this process, with its pid file and log, until `stop()`. */
export async function runSafekeeper(
  repoDir: string,
  id: number,
  opts: { logToStdout: boolean },
): Promise<RunningServer<Safekeeper>> {
  return runServer({
    ...safekeeperFiles(repoDir, id),
    logToStdout: opts.logToStdout,
    start: async (log) => {
      const config = safekeeperConfigOf(repoDir, id)
      log.level = config.logLevel
      return Safekeeper.start(safekeeperDir(repoDir, id), { config, log })
    },
  })
}
