/**
 * The local cluster as a whole: `zenith init` (repo dir, pageserver.toml, a default tenant with its
 * `main` branch made by initdb), `start` (initialising first when needed), `stop` (computes first, then
 * the pageserver) and `status`.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { Repository } from '../engine/repository.js'
import { validateOverrides } from '../engine/tenant-config.js'
import { generateId } from '../lib/ids.js'
import { bootstrapTimeline } from '../pageserver/bootstrap.js'
import {
  DEFAULT_PAGESERVER_CONFIG,
  type PageserverConfig,
  savePageserverConfig,
} from '../pageserver/config.js'
import { formatLsn } from '../postgres/lsn.js'
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
  DEFAULT_BRANCH,
  isInitialised,
  newClusterConfig,
  RepoConfigError,
  saveClusterConfig,
} from './repo-config.js'
import type { Step } from './steps.js'

export interface InitOptions {
  pgDistribDir?: string
  pageserverPgPort?: number
  pageserverHttpPort?: number
  computePortBase?: number
  /** Tenant config defaults of the pageserver (validated by the engine). */
  tenantDefaults?: Record<string, unknown>
}

export function initSteps(repoDir: string, opts: InitOptions = {}): Step[] {
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
  return [
    {
      title: `create the repo dir ${repoDir}`,
      run: async () => {
        if (isInitialised(repoDir)) throw new RepoConfigError(`${repoDir} is already a zenith repo dir`)
        checkPgBinaries(pgBinDir(cluster.pgDistribDir))
        const tenantDefaults = validateOverrides(opts.tenantDefaults ?? {})
        // Computes run as the postgres OS user when we are root: it must be able to enter the repo dir.
        mkdirSync(repoDir, { recursive: true, mode: 0o755 })
        mkdirSync(pageserverDir(repoDir), { recursive: true })
        savePageserverConfig(pageserverConfigFile(repoDir), { ...psConfig, tenantDefaults })
      },
    },
    {
      title: `create the default tenant and its ${DEFAULT_BRANCH} branch (initdb)`,
      run: async () => {
        const repo = Repository.open(pageserverDir(repoDir), { background: false })
        let saved = false
        try {
          const tenant = repo.createTenant()
          const tl = await bootstrapTimeline(tenant, generateId(), {
            pgDistribDir: cluster.pgDistribDir,
            log: () => {},
          })
          cluster.defaultTenantId = tenant.tenantId
          cluster.branches[tenant.tenantId] = { [DEFAULT_BRANCH]: tl.timelineId }
          // The config file last: its presence is what makes the repo dir initialised.
          saveClusterConfig(repoDir, cluster)
          saved = true
          return `tenant ${tenant.tenantId}, branch ${DEFAULT_BRANCH} at ${formatLsn(tl.lastRecordLsn)}`
        } finally {
          await repo.close()
          // A failed init leaves no half-made pageserver behind: the next init starts clean.
          if (!saved) rmSync(pageserverDir(repoDir), { recursive: true, force: true })
        }
      },
    },
  ]
}

/** The steps of `zenith start`: initialise a missing repo dir, then start the pageserver. */
export function startSteps(repoDir: string, opts: InitOptions = {}): Step[] {
  const steps = isInitialised(repoDir) ? [] : initSteps(repoDir, opts)
  steps.push({
    title: 'start the pageserver',
    run: async () => {
      const { pid, alreadyRunning } = await startPageserver(repoDir)
      return alreadyRunning
        ? `the pageserver is already running (pid ${pid})`
        : `pageserver started (pid ${pid})`
    },
  })
  return steps
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
