/**
 * The cluster's pageservers. `zenith init` makes the first; `zenith pageserver start N` adds pageserver N
 * on first use: its pageserver.toml is the first one's (the same remote storage, which is what lets a
 * tenant move between them, the same storage controller and defaults) with both ports moved up by N-1
 * and its own node id.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { savePageserverConfig } from '../pageserver/config.js'
import {
  FIRST_PAGESERVER,
  pageserverClientOf,
  pageserverConfigFile,
  pageserverConfigOf,
  pageserverDir,
} from './layout.js'
import { type PageserverStatus, pageserverStatus } from './pageserver-process.js'
import { loadClusterConfig, RepoConfigError, saveClusterConfig } from './repo-config.js'

/** The highest pageserver id: ports are the first one's plus id-1, so they stay apart from others. */
export const MAX_PAGESERVER_ID = 99

/** Makes pageserver `id` part of the cluster when it is not yet; true when it was added. */
export function ensurePageserver(repoDir: string, id: number): boolean {
  if (!Number.isInteger(id) || id < 1 || id > MAX_PAGESERVER_ID)
    throw new RepoConfigError(`pageserver id ${id} is not valid: use 1..${MAX_PAGESERVER_ID}`)
  const c = loadClusterConfig(repoDir)
  if (c.pageservers.includes(id)) return false
  const first = pageserverConfigOf(repoDir, FIRST_PAGESERVER)
  const shift = id - FIRST_PAGESERVER
  const file = pageserverConfigFile(repoDir, id)
  // A directory left by an earlier attempt keeps its settings; the config names it again.
  if (!existsSync(file)) {
    mkdirSync(pageserverDir(repoDir, id), { recursive: true })
    savePageserverConfig(file, {
      ...first,
      listenHttpAddr: { ...first.listenHttpAddr, port: first.listenHttpAddr.port + shift },
      listenPgAddr: { ...first.listenPgAddr, port: first.listenPgAddr.port + shift },
      // The storage controller knows it by its id: the one its re-attach and validate calls name.
      controlPlane: first.controlPlane && { ...first.controlPlane, nodeId: id },
    })
  }
  c.pageservers = [...c.pageservers, id].sort((a, b) => a - b)
  saveClusterConfig(repoDir, c)
  return true
}

export interface PageserverRow {
  id: number
  status: PageserverStatus['state']
  /** Its HTTP API answers. */
  reachable: boolean
  pid: number | null
  http_port: number
  pg_port: number
  /** How many tenants it holds; null when it does not answer. */
  tenants: number | null
}

export async function listPageservers(repoDir: string): Promise<PageserverRow[]> {
  return Promise.all(
    loadClusterConfig(repoDir).pageservers.map(async (id) => {
      const s = await pageserverStatus(repoDir, id)
      const cfg = pageserverConfigOf(repoDir, id)
      const tenants = s.reachable ? (await pageserverClientOf(repoDir, id).tenants()).length : null
      return {
        id,
        status: s.state,
        reachable: s.reachable,
        pid: s.pid,
        http_port: cfg.listenHttpAddr.port,
        pg_port: cfg.listenPgAddr.port,
        tenants,
      }
    }),
  )
}
