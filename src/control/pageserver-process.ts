/**
 * The pageserver as the control plane runs it (src/control/server-process.ts): a detached child
 * (`zenith pageserver start`, logging to pageserver/pageserver.log, found again through
 * pageserver/pageserver.pid), or in this very process (`zenith start --embedded`, `zenith pageserver
 * run`). Both run the same Pageserver code.
 */

import { Pageserver } from '../pageserver/pageserver.js'
import { type RemoteStorageConfig, remoteStorageLocation } from '../pageserver/remote-storage-config.js'
import {
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

export const pageserverFiles = (repoDir: string): ServerFiles => ({
  name: 'pageserver',
  pidFile: pageserverPidFile(repoDir),
  logFile: pageserverLogFile(repoDir),
})

export interface PageserverStatus extends ServerState {
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

export async function pageserverStatus(repoDir: string): Promise<PageserverStatus> {
  const cfg = pageserverConfigOf(repoDir)
  const { state, running, pid, log_file, last_log_lines } = serverState(pageserverFiles(repoDir))
  return {
    state,
    running,
    pid,
    http: `${cfg.listenHttpAddr.host}:${cfg.listenHttpAddr.port}`,
    pg: `${cfg.listenPgAddr.host}:${cfg.listenPgAddr.port}`,
    reachable: running && (await pageserverClientOf(repoDir).isUp()),
    remote_storage: cfg.remoteStorage === null ? null : remoteStorageStatus(cfg.remoteStorage),
    log_file,
    ...(last_log_lines ? { last_log_lines } : {}),
  }
}

/** Starts the pageserver as a detached process; a running one is left alone. */
export async function startPageserver(repoDir: string): Promise<{ pid: number; alreadyRunning: boolean }> {
  const cfg = pageserverConfigOf(repoDir)
  const client = pageserverClientOf(repoDir)
  return startServer({
    ...pageserverFiles(repoDir),
    zenithArgs: ['pageserver', 'run', '--repo-dir', repoDir],
    ports: [
      { what: 'HTTP API', addr: cfg.listenHttpAddr },
      { what: 'page service', addr: cfg.listenPgAddr },
    ],
    configFile: pageserverConfigFile(repoDir),
    ready: () => client.isUp(),
    timeoutMs: 60_000,
  })
}

/** Stops it: SIGTERM lets it flush everything ingested; `immediate` kills it (WAL is streamed again). */
export async function stopPageserver(repoDir: string, opts: { immediate?: boolean } = {}) {
  return stopByPidFile({
    pidFile: pageserverPidFile(repoDir),
    name: 'pageserver',
    signal: opts.immediate ? 'SIGKILL' : 'SIGTERM',
    timeoutMs: 120_000,
  })
}

/** Runs the pageserver in this process, with its pid file and log, until `stop()`. */
export async function runPageserver(
  repoDir: string,
  opts: { logToStdout: boolean },
): Promise<RunningServer<Pageserver>> {
  return runServer({
    ...pageserverFiles(repoDir),
    logToStdout: opts.logToStdout,
    start: async (log) => {
      const config = pageserverConfigOf(repoDir)
      log.level = config.logLevel
      return Pageserver.start(pageserverDir(repoDir), { log, config })
    },
  })
}
