/**
 * The local cluster as a whole: `zenith init` (repo dir, pageserver.toml, a default tenant with its
 * `main` branch made by initdb), `start` (initialising first when needed), `stop` (computes first, then
 * the pageserver) and `status`.
 */
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { validateOverrides } from '../engine/tenant-config.js'
import {
  DEFAULT_PAGESERVER_CONFIG,
  type PageserverConfig,
  savePageserverConfig,
} from '../pageserver/config.js'
import { checkPgBinaries, pgBinDir } from '../postgres/pg-bin.js'
import { type EndpointRow, listEndpoints, stopEndpoint } from './endpoints.js'
import { pageserverConfigFile, pageserverDir } from './layout.js'
import {
  type PageserverStatus,
  pageserverStatus,
  startPageserver,
  stopPageserver,
} from './pageserver-process.js'
import {
  CONFIG_FILE,
  DEFAULT_BRANCH,
  isInitialised,
  newClusterConfig,
  RepoConfigError,
  saveClusterConfig,
} from './repo-config.js'
import type { Step } from './steps.js'
import { createTenant } from './tenants.js'

export interface InitOptions {
  pgDistribDir?: string
  pageserverPgPort?: number
  pageserverHttpPort?: number
  computePortBase?: number
  /** Tenant config defaults of the pageserver (validated by the engine). */
  tenantDefaults?: Record<string, unknown>
}

/**
 * The steps of `zenith init`: the repo dir with its config and pageserver.toml, then the default tenant,
 * made the way `zenith tenant create` makes one: through the pageserver's API, started for the purpose
 * (and left running when `keepRunning`, as `zenith start` wants). A failure removes what init made, so
 * the next init starts clean.
 */
export function initSteps(repoDir: string, opts: InitOptions & { keepRunning?: boolean } = {}): Step[] {
  const cluster = newClusterConfig({ pgDistribDir: opts.pgDistribDir, computePortBase: opts.computePortBase })
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
  }
  const undo = async () => {
    await stopPageserver(repoDir, { immediate: true })
    rmSync(pageserverDir(repoDir), { recursive: true, force: true })
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
        mkdirSync(pageserverDir(repoDir), { recursive: true })
        savePageserverConfig(pageserverConfigFile(repoDir), { ...psConfig, tenantDefaults })
        saveClusterConfig(repoDir, cluster)
      },
    },
    {
      title: 'start the pageserver',
      run: () => undoing(async () => `pageserver started (pid ${(await startPageserver(repoDir)).pid})`),
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
              await stopPageserver(repoDir)
              return 'pageserver stopped'
            },
          },
        ]),
  ]
}

/** The steps of `zenith start`: initialise a missing repo dir, then start the pageserver. */
export function startSteps(repoDir: string, opts: InitOptions = {}): Step[] {
  if (!isInitialised(repoDir)) return initSteps(repoDir, { ...opts, keepRunning: true })
  return [
    {
      title: 'start the pageserver',
      run: async () => {
        const { pid, alreadyRunning } = await startPageserver(repoDir)
        return alreadyRunning
          ? `the pageserver is already running (pid ${pid})`
          : `pageserver started (pid ${pid})`
      },
    },
  ]
}

/** The steps of `zenith stop`: every running compute, then the pageserver. */
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
  steps.push({
    title: 'stop the pageserver',
    run: async () => {
      const { wasRunning } = await stopPageserver(repoDir, opts)
      return wasRunning ? 'pageserver stopped' : 'the pageserver was not running'
    },
  })
  return steps
}

export interface ClusterStatus {
  repo_dir: string
  initialised: boolean
  pageserver: PageserverStatus | null
  endpoints: EndpointRow[]
}

export async function clusterStatus(repoDir: string): Promise<ClusterStatus> {
  if (!isInitialised(repoDir))
    return { repo_dir: repoDir, initialised: false, pageserver: null, endpoints: [] }
  return {
    repo_dir: repoDir,
    initialised: true,
    pageserver: await pageserverStatus(repoDir),
    endpoints: await listEndpoints(repoDir),
  }
}
