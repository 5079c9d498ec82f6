/**
 * The storage controller as the control plane runs it (src/control/server-process.ts, as the pageserver
 * runs): its files under `<repo>/storage_controller/` (storage_controller.toml, state.json,
 * storage_controller.pid, storage_controller.log), started detached as `zenith storage-controller run`
 * and ready once its HTTP API answers, or run inside this process by `zenith start --embedded`.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { LocationMode } from '../engine/location.js'
import { formatHostPort } from '../lib/host-port.js'
import { stopByPidFile } from './process.js'
import {
  type RunningServer,
  runServer,
  type ServerFiles,
  type ServerState,
  serverState,
  startServer,
} from './server-process.js'
import { StorageController } from './storage-controller.js'
import { StorageControllerClient } from './storage-controller-client.js'
import {
  loadStorageControllerConfig,
  STORAGE_CONTROLLER_CONFIG_FILE,
  type StorageControllerConfig,
} from './storage-controller-config.js'
import { readControllerState, STATE_FILE } from './storage-controller-state.js'

export const storageControllerDir = (repoDir: string) => path.join(repoDir, 'storage_controller')
export const storageControllerConfigFile = (repoDir: string) =>
  path.join(storageControllerDir(repoDir), STORAGE_CONTROLLER_CONFIG_FILE)
export const storageControllerStateFile = (repoDir: string) =>
  path.join(storageControllerDir(repoDir), STATE_FILE)

export const storageControllerFiles = (repoDir: string): ServerFiles => ({
  name: 'storage controller',
  pidFile: path.join(storageControllerDir(repoDir), 'storage_controller.pid'),
  logFile: path.join(storageControllerDir(repoDir), 'storage_controller.log'),
})

/**
 * Whether the repo dir has one: a repo dir made before the storage controller has neither its config
 * nor a control_plane_api in pageserver.toml, and runs without it.
 */
export const hasStorageController = (repoDir: string): boolean =>
  existsSync(storageControllerConfigFile(repoDir))

export function storageControllerConfigOf(repoDir: string): StorageControllerConfig {
  return loadStorageControllerConfig(storageControllerConfigFile(repoDir))
}

export function storageControllerClientOf(repoDir: string): StorageControllerClient {
  return new StorageControllerClient(storageControllerConfigOf(repoDir).listenHttpAddr)
}

/** pageserver.toml's `control_plane_api` for a controller on `config`'s address. */
export const controlPlaneApiOf = (config: StorageControllerConfig): string =>
  `http://${formatHostPort(config.listenHttpAddr)}/upcall/v1/`

export interface StorageControllerStatus extends ServerState {
  http: string
  http_port: number
  /** The HTTP API answers. */
  reachable: boolean
  /** Every tenant's placement: from the controller when it answers, else read from its state file. */
  tenants: { tenant_id: string; generation: number; node_id: number; mode: LocationMode }[]
}

export async function storageControllerStatus(repoDir: string): Promise<StorageControllerStatus> {
  const cfg = storageControllerConfigOf(repoDir)
  const { state, running, pid, log_file, last_log_lines } = serverState(storageControllerFiles(repoDir))
  const client = storageControllerClientOf(repoDir)
  const reachable = running && (await client.isUp())
  return {
    state,
    running,
    pid,
    http: formatHostPort(cfg.listenHttpAddr),
    http_port: cfg.listenHttpAddr.port,
    reachable,
    tenants: reachable
      ? await client.tenants(5000)
      : [...readControllerState(storageControllerStateFile(repoDir))].map(([tenant_id, p]) => ({
          tenant_id,
          ...p,
        })),
    log_file,
    ...(last_log_lines ? { last_log_lines } : {}),
  }
}

/** Starts it as a detached process; a running one is left alone. */
export async function startStorageController(
  repoDir: string,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const cfg = storageControllerConfigOf(repoDir)
  const client = storageControllerClientOf(repoDir)
  return startServer({
    ...storageControllerFiles(repoDir),
    zenithArgs: ['storage-controller', 'run', '--repo-dir', repoDir],
    ports: [{ what: 'HTTP API', addr: cfg.listenHttpAddr }],
    configFile: storageControllerConfigFile(repoDir),
    ready: () => client.isUp(),
    timeoutMs: 30_000,
  })
}

/** Every change is on disk before it is answered, so a kill loses nothing. */
export async function stopStorageController(repoDir: string, opts: { immediate?: boolean } = {}) {
  return stopByPidFile({
    pidFile: storageControllerFiles(repoDir).pidFile,
    name: 'storage controller',
    signal: opts.immediate ? 'SIGKILL' : 'SIGTERM',
    timeoutMs: 30_000,
  })
}

/** Runs it in this process, with its pid file and log, until `stop()`. */
export async function runStorageController(
  repoDir: string,
  opts: { logToStdout: boolean },
): Promise<RunningServer<StorageController>> {
  return runServer({
    ...storageControllerFiles(repoDir),
    logToStdout: opts.logToStdout,
    start: async (log) => {
      const config = storageControllerConfigOf(repoDir)
      log.level = config.logLevel
      return StorageController.start(storageControllerDir(repoDir), { config, log })
    },
  })
}
