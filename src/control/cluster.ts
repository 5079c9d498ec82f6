/**
 * The local cluster as a whole: `zenith init` (repo dir, pageserver.toml and each safekeeper.toml, a
 * storage_controller.toml, a default tenant with its `main` branch made by initdb), `start` (initialising
 * first when needed; the storage controller, then the safekeepers, then the pageserver), `stop`
 * (computes first, then the pageserver, then the safekeepers, the storage controller last) and `status`.
 */
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { validateOverrides } from '../engine/tenant-config.js'
import { formatHostPort, type HostPort } from '../lib/host-port.js'
import {
  DEFAULT_PAGESERVER_CONFIG,
  type PageserverConfig,
  savePageserverConfig,
} from '../pageserver/config.js'
import type { RemoteStorageConfig } from '../pageserver/remote-storage-config.js'
import { checkPgBinaries, pgBinDir } from '../postgres/pg-bin.js'
import { type EndpointRow, listEndpoints, stopEndpoint } from './endpoints.js'
import {
  defaultRemoteStorageDir,
  FIRST_PAGESERVER,
  pageserverConfigFile,
  pageserverDir,
  safekeepersDir,
} from './layout.js'
import {
  type PageserverStatus,
  pageserverName,
  pageserverStatus,
  runPageserver,
  startPageserver,
  stopPageserver,
} from './pageserver-process.js'
import {
  CONFIG_FILE,
  DEFAULT_BRANCH,
  isInitialised,
  loadClusterConfig,
  newClusterConfig,
  RepoConfigError,
  saveClusterConfig,
} from './repo-config.js'
import {
  runSafekeeper,
  type SafekeeperCount,
  type SafekeeperPortBases,
  type SafekeeperStatus,
  safekeeperConfigs,
  safekeeperFiles,
  safekeeperStatus,
  startSafekeeper,
  stopSafekeeper,
  writeSafekeeperConfigs,
} from './safekeeper-process.js'
import { type RunningServer, serverState } from './server-process.js'
import type { Step } from './steps.js'
import { defaultStorageControllerConfig, saveStorageControllerConfig } from './storage-controller-config.js'
import {
  controlPlaneApiOf,
  hasStorageController,
  runStorageController,
  type StorageControllerStatus,
  startStorageController,
  stopStorageController,
  storageControllerConfigFile,
  storageControllerDir,
  storageControllerFiles,
  storageControllerStatus,
} from './storage-controller-process.js'
import { createTenant } from './tenants.js'

/** The pageserver's node id at the storage controller (pageserver.toml's `id`), as neon_local's first. */
const PAGESERVER_NODE_ID = 1

/** As neon_local: one safekeeper, so commits are durable off the compute from the start. */
export const DEFAULT_SAFEKEEPERS: SafekeeperCount = 1

export interface InitOptions {
  pgDistribDir?: string
  pageserverPgPort?: number
  pageserverHttpPort?: number
  computePortBase?: number
  /** Tenant config defaults of the pageserver (validated by the engine). */
  tenantDefaults?: Record<string, unknown>
  /** Default 1, as neon_local; 0: the pageserver is each compute's synchronous standby. */
  numSafekeepers?: SafekeeperCount
  safekeeperPortBases?: SafekeeperPortBases
  /** Default: the directory `remote_storage` in the repo dir. */
  remoteStorage?: RemoteStorageConfig
  /** Default 1234, as neon_local. */
  storageControllerPort?: number
}

/**
 * The steps of `zenith init`: the repo dir with its config and pageserver.toml, then the default tenant,
 * made the way `zenith tenant create` makes one: through the pageserver's API, started for the purpose
 * (and left running when `keepRunning`, as `zenith start` wants). A failure removes what init made, so
 * the next init starts clean.
 */
export function initSteps(repoDir: string, opts: InitOptions & { keepRunning?: boolean } = {}): Step[] {
  const skConfigs = safekeeperConfigs(opts.numSafekeepers ?? DEFAULT_SAFEKEEPERS, opts.safekeeperPortBases)
  const cluster = newClusterConfig({
    pgDistribDir: opts.pgDistribDir,
    computePortBase: opts.computePortBase,
    safekeepers: skConfigs.map((c) => c.id),
  })
  const scConfig = defaultStorageControllerConfig(opts.storageControllerPort)
  const psConfig: PageserverConfig = {
    ...DEFAULT_PAGESERVER_CONFIG,
    pgDistribDir: cluster.pgDistribDir,
    listenPgAddr: {
      host: '127.0.0.1',
      port: opts.pageserverPgPort ?? DEFAULT_PAGESERVER_CONFIG.listenPgAddr.port,
    },
    listenHttpAddr: {
      host: '127.0.0.1',
      port: opts.pageserverHttpPort ?? DEFAULT_PAGESERVER_CONFIG.listenHttpAddr.port,
    },
    remoteStorage: opts.remoteStorage ?? { kind: 'local', localPath: defaultRemoteStorageDir(repoDir) },
    controlPlane: { api: controlPlaneApiOf(scConfig), nodeId: PAGESERVER_NODE_ID },
  }
  const undo = async () => {
    await stopPageserver(repoDir, FIRST_PAGESERVER, { immediate: true })
    await stopStorageController(repoDir, { immediate: true })
    for (const id of cluster.safekeepers) await stopSafekeeper(repoDir, id, { immediate: true })
    rmSync(pageserverDir(repoDir, FIRST_PAGESERVER), { recursive: true, force: true })
    rmSync(safekeepersDir(repoDir), { recursive: true, force: true })
    rmSync(storageControllerDir(repoDir), { recursive: true, force: true })
    // A directory named by --remote-storage may hold what is not ours; the default one is init's own.
    if (opts.remoteStorage === undefined)
      rmSync(defaultRemoteStorageDir(repoDir), { recursive: true, force: true })
    rmSync(path.join(repoDir, CONFIG_FILE), { force: true })
  }
  const undoing = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      await undo()
      throw err
    }
  }
  return [
    {
      title: `create the repo dir ${repoDir}`,
      run: async () => {
        if (isInitialised(repoDir))
          throw new RepoConfigError(`${repoDir} is already a zenith repo dir`, { kind: 'conflict' })
        checkPgBinaries(pgBinDir(cluster.pgDistribDir))
        const tenantDefaults = validateOverrides(opts.tenantDefaults ?? {})
        // Computes run as the postgres OS user when we are root: it must be able to enter the repo dir.
        mkdirSync(repoDir, { recursive: true, mode: 0o755 })
        mkdirSync(pageserverDir(repoDir, FIRST_PAGESERVER), { recursive: true })
        savePageserverConfig(pageserverConfigFile(repoDir, FIRST_PAGESERVER), { ...psConfig, tenantDefaults })
        writeSafekeeperConfigs(repoDir, skConfigs)
        mkdirSync(storageControllerDir(repoDir), { recursive: true })
        saveStorageControllerConfig(storageControllerConfigFile(repoDir), scConfig)
        saveClusterConfig(repoDir, cluster)
      },
    },
    // The pageserver asks it for its generations as it starts, and the default tenant is attached there.
    {
      ...startStorageControllerStep(repoDir),
      run: (p) => undoing(() => startStorageControllerStep(repoDir).run(p)),
    },
    // The tenant needs the pageserver only; safekeepers start when the cluster is to keep running.
    ...(opts.keepRunning
      ? cluster.safekeepers.map((id) => {
          const step = startSafekeeperStep(repoDir, id)
          return { ...step, run: (p: (title: string) => void) => undoing(() => step.run(p)) }
        })
      : []),
    {
      title: 'start the pageserver',
      run: () =>
        undoing(
          async () => `pageserver started (pid ${(await startPageserver(repoDir, FIRST_PAGESERVER)).pid})`,
        ),
    },
    {
      title: `create the default tenant and its ${DEFAULT_BRANCH} branch (initdb)`,
      run: () =>
        undoing(async () => {
          const t = await createTenant(repoDir, { setDefault: true })
          return `tenant ${t.tenantId}, branch ${DEFAULT_BRANCH} at ${t.lastRecordLsn}`
        }),
    },
    ...(opts.keepRunning
      ? []
      : [
          {
            title: 'stop the pageserver',
            run: async () => {
              await stopPageserver(repoDir, FIRST_PAGESERVER)
              return 'pageserver stopped'
            },
          },
          {
            title: 'stop the storage controller',
            run: async () => {
              await stopStorageController(repoDir)
              return 'storage controller stopped'
            },
          },
        ]),
  ]
}

function startStorageControllerStep(repoDir: string): Step {
  return {
    title: 'start the storage controller',
    run: async () => {
      const { pid, alreadyRunning } = await startStorageController(repoDir)
      return alreadyRunning
        ? `the storage controller is already running (pid ${pid})`
        : `storage controller started (pid ${pid})`
    },
  }
}

function startSafekeeperStep(repoDir: string, id: number): Step {
  return {
    title: `start safekeeper ${id}`,
    run: async () => {
      const { pid, alreadyRunning } = await startSafekeeper(repoDir, id)
      return alreadyRunning
        ? `safekeeper ${id} is already running (pid ${pid})`
        : `safekeeper ${id} started (pid ${pid})`
    },
  }
}

/**
 * `ranBefore`: it ran when `zenith stop` began. An embedded safekeeper is gone by its own step, stopped
 * with the pageserver it shares a process with, and must not be reported as not running.
 */
function stopSafekeeperStep(
  repoDir: string,
  id: number,
  opts: { immediate?: boolean; ranBefore: boolean },
): Step {
  return {
    title: `stop safekeeper ${id}`,
    run: async () => {
      const { wasRunning } = await stopSafekeeper(repoDir, id, opts)
      return wasRunning || opts.ranBefore ? `safekeeper ${id} stopped` : `safekeeper ${id} was not running`
    },
  }
}

/**
 * The steps of `zenith start`: initialise a missing repo dir, then start the safekeepers and the
 * pageservers, each unless it runs already.
 */
export function startSteps(repoDir: string, opts: InitOptions = {}): Step[] {
  if (!isInitialised(repoDir)) return initSteps(repoDir, { ...opts, keepRunning: true })
  const c = loadClusterConfig(repoDir)
  return [
    ...(hasStorageController(repoDir) ? [startStorageControllerStep(repoDir)] : []),
    ...c.safekeepers.map((id) => startSafekeeperStep(repoDir, id)),
    ...c.pageservers.map((id) => startPageserverStep(repoDir, id)),
  ]
}

export function startPageserverStep(repoDir: string, id: number): Step {
  const name = pageserverName(id)
  return {
    title: `start the ${name}`,
    run: async () => {
      const { pid, alreadyRunning } = await startPageserver(repoDir, id)
      return alreadyRunning ? `the ${name} is already running (pid ${pid})` : `${name} started (pid ${pid})`
    },
  }
}

/**
 * The steps of `zenith stop`: every running compute, then the pageservers, then the safekeepers, which
 * the pageservers may still be reading WAL from.
 */
export async function stopSteps(repoDir: string, opts: { immediate?: boolean } = {}): Promise<Step[]> {
  const mode = opts.immediate ? 'immediate' : 'fast'
  const running = isInitialised(repoDir)
    ? (await listEndpoints(repoDir)).filter((e) => e.status === 'running')
    : []
  const steps: Step[] = running.map((e) => ({
    title: `stop endpoint ${e.name}`,
    run: async () => {
      const r = await stopEndpoint(repoDir, e.name, { mode })
      return r.lsn ? `endpoint ${e.name} stopped at ${r.lsn}` : `endpoint ${e.name} stopped`
    },
  }))
  const pageservers = isInitialised(repoDir) ? loadClusterConfig(repoDir).pageservers : [FIRST_PAGESERVER]
  for (const id of pageservers) {
    const name = pageserverName(id)
    steps.push({
      title: `stop the ${name}`,
      run: async () => {
        const { wasRunning } = await stopPageserver(repoDir, id, opts)
        return wasRunning ? `${name} stopped` : `the ${name} was not running`
      },
    })
  }
  if (isInitialised(repoDir)) {
    for (const id of loadClusterConfig(repoDir).safekeepers) {
      const ranBefore = serverState(safekeeperFiles(repoDir, id)).running
      steps.push(stopSafekeeperStep(repoDir, id, { ...opts, ranBefore }))
    }
  }
  if (isInitialised(repoDir) && hasStorageController(repoDir)) {
    const ranBefore = serverState(storageControllerFiles(repoDir)).running
    steps.push({
      title: 'stop the storage controller',
      run: async () => {
        const { wasRunning } = await stopStorageController(repoDir, opts)
        return wasRunning || ranBefore
          ? 'storage controller stopped'
          : 'the storage controller was not running'
      },
    })
  }
  return steps
}

export interface ClusterStatus {
  repo_dir: string
  initialised: boolean
  pageservers: PageserverStatus[]
  storage_controller: StorageControllerStatus | null
  safekeepers: SafekeeperStatus[]
  endpoints: EndpointRow[]
}

export async function clusterStatus(repoDir: string): Promise<ClusterStatus> {
  if (!isInitialised(repoDir))
    return {
      repo_dir: repoDir,
      initialised: false,
      pageservers: [],
      storage_controller: null,
      safekeepers: [],
      endpoints: [],
    }
  const c = loadClusterConfig(repoDir)
  return {
    repo_dir: repoDir,
    initialised: true,
    pageservers: await Promise.all(c.pageservers.map((id) => pageserverStatus(repoDir, id))),
    storage_controller: hasStorageController(repoDir) ? await storageControllerStatus(repoDir) : null,
    safekeepers: await Promise.all(c.safekeepers.map((id) => safekeeperStatus(repoDir, id))),
    endpoints: await listEndpoints(repoDir),
  }
}

/** A server running inside this process. */
export interface EmbeddedServer {
  name: string
  http: string
  /** null: it has no libpq port (the storage controller). */
  pg: string | null
}

export interface EmbeddedCluster {
  /** In the order they started: the storage controller, the safekeepers, then the pageservers. */
  servers: EmbeddedServer[]
  /** Stops them in the opposite order, telling `onStopped` of each. */
  stop(onStopped?: (name: string) => void): Promise<void>
}

/**
 * `zenith start --embedded`: the storage controller, the safekeepers and the pageservers inside this process, each with its pid
 * file and log as if detached. When one fails to start, those already running are stopped again.
 */
export async function runEmbedded(repoDir: string): Promise<EmbeddedCluster> {
  const running: (EmbeddedServer & { run: RunningServer<unknown> })[] = []
  const add = (
    name: string,
    addrs: { listenHttpAddr: HostPort; listenPgAddr?: HostPort },
    run: RunningServer<unknown>,
  ) =>
    running.push({
      name,
      http: formatHostPort(addrs.listenHttpAddr),
      pg: addrs.listenPgAddr === undefined ? null : formatHostPort(addrs.listenPgAddr),
      run,
    })
  const stop = async (onStopped?: (name: string) => void) => {
    for (const s of [...running].reverse()) {
      await s.run.stop()
      onStopped?.(s.name)
    }
  }
  try {
    const c = loadClusterConfig(repoDir)
    if (hasStorageController(repoDir)) {
      const sc = await runStorageController(repoDir, { logToStdout: false })
      add('storage controller', sc.server.config, sc)
    }
    for (const id of c.safekeepers) {
      const sk = await runSafekeeper(repoDir, id, { logToStdout: false })
      add(`safekeeper ${id}`, sk.server.config, sk)
    }
    for (const id of c.pageservers) {
      const ps = await runPageserver(repoDir, id, { logToStdout: false })
      add(pageserverName(id), ps.server.config, ps)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { servers: running.map(({ name, http, pg }) => ({ name, http, pg })), stop }
}
