/**
 * A pageserver as the control plane runs it (src/control/server-process.ts): a detached child
 * (`zenith pageserver start [id]`, logging to its pageserver.log, found again through its
 * pageserver.pid), or in this very process (`zenith start --embedded`, `zenith pageserver run [id]`).
 * Both run the same Pageserver code. Every function names the pageserver by its id.
 */

import { Pageserver } from '../pageserver/pageserver.js'
import { type RemoteStorageConfig, remoteStorageLocation } from '../pageserver/remote-storage-config.js'
import {
  FIRST_PAGESERVER,
  pageserverClientOf,
  pageserverConfigFile,
  pageserverConfigOf,
  pageserverDir,
  pageserverLogFile,
  pageserverPidFile,
} from './layout.js'
import { stopByPidFile } from './process.js'
import {
  type RunningServer,
  runServer,
  type ServerFiles,
  type ServerState,
  serverState,
  startServer,
} from './server-process.js'

/** How log lines and messages name it: `pageserver` for the first, as before there were more. */
export const pageserverName = (id: number): string =>
  id === FIRST_PAGESERVER ? 'pageserver' : `pageserver ${id}`

export const pageserverFiles = (repoDir: string, id: number): ServerFiles => ({
  name: pageserverName(id),
  pidFile: pageserverPidFile(repoDir, id),
  logFile: pageserverLogFile(repoDir, id),
})

export interface PageserverStatus extends ServerState {
  id: number
  http: string
  pg: string
  /** The HTTP API answers. */
  reachable: boolean
  /** Where its remote storage is, from pageserver.toml; null when it names none. */
  remote_storage: RemoteStorageStatus | null
}

export interface RemoteStorageStatus {
  kind: RemoteStorageConfig['kind']
  /** A directory, or `s3://bucket/prefix`. */
  location: string
  endpoint?: string
  region?: string
}

function remoteStorageStatus(c: RemoteStorageConfig): RemoteStorageStatus {
  return {
    kind: c.kind,
    location: remoteStorageLocation(c),
    ...(c.kind === 's3' && c.endpoint !== undefined ? { endpoint: c.endpoint } : {}),
    ...(c.kind === 's3' && c.region !== undefined ? { region: c.region } : {}),
  }
}

export async function pageserverStatus(repoDir: string, id: number): Promise<PageserverStatus> {
  const cfg = pageserverConfigOf(repoDir, id)
  const { state, running, pid, log_file, last_log_lines } = serverState(pageserverFiles(repoDir, id))
  return {
    id,
    state,
    running,
    pid,
    http: `${cfg.listenHttpAddr.host}:${cfg.listenHttpAddr.port}`,
    pg: `${cfg.listenPgAddr.host}:${cfg.listenPgAddr.port}`,
    reachable: running && (await pageserverClientOf(repoDir, id).isUp()),
    remote_storage: cfg.remoteStorage === null ? null : remoteStorageStatus(cfg.remoteStorage),
    log_file,
    ...(last_log_lines ? { last_log_lines } : {}),
  }
}

/** Starts the pageserver as a detached process; a running one is left alone. */
export async function startPageserver(
  repoDir: string,
  id: number,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const cfg = pageserverConfigOf(repoDir, id)
  const client = pageserverClientOf(repoDir, id)
  return startServer({
    ...pageserverFiles(repoDir, id),
    zenithArgs: ['pageserver', 'run', String(id), '--repo-dir', repoDir],
    ports: [
      { what: 'HTTP API', addr: cfg.listenHttpAddr },
      { what: 'page service', addr: cfg.listenPgAddr },
    ],
    configFile: pageserverConfigFile(repoDir, id),
    ready: () => client.isUp(),
    timeoutMs: 60_000,
  })
}

/** Stops it: SIGTERM lets it flush everything ingested; `immediate` kills it (WAL is streamed again). */
export async function stopPageserver(repoDir: string, id: number, opts: { immediate?: boolean } = {}) {
  return stopByPidFile({
    pidFile: pageserverPidFile(repoDir, id),
    name: pageserverName(id),
    signal: opts.immediate ? 'SIGKILL' : 'SIGTERM',
    timeoutMs: 120_000,
  })
}

/** Runs the pageserver in this process, with its pid file and log, until `stop()`. */
export async function runPageserver(
  repoDir: string,
  id: number,
  opts: { logToStdout: boolean },
): Promise<RunningServer<Pageserver>> {
  return runServer({
    ...pageserverFiles(repoDir, id),
    logToStdout: opts.logToStdout,
    start: async (log) => {
      const config = pageserverConfigOf(repoDir, id)
      log.level = config.logLevel
      return Pageserver.start(pageserverDir(repoDir, id), { log, config })
    },
  })
}
