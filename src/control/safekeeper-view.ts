/**
 * What the safekeepers hold, as the CLI shows it beside the pageserver's LSNs: one timeline on every
 * safekeeper (`timeline show`, `pg list`), and every safekeeper with its timelines and their lag behind
 * the compute (`safekeeper list`). A safekeeper that is stopped or does not answer is shown as such and
 * never fails the command.
 */
import { ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import type { SkTimelineInfo } from '../safekeeper/api-types.js'
import { writerFlushLsns } from './computes.js'
import { safekeeperClientOf } from './layout.js'
import { loadClusterConfig } from './repo-config.js'
import { safekeeperFiles, safekeeperIds, safekeeperStatus } from './safekeeper-process.js'
import { serverState } from './server-process.js'

/** One safekeeper's state of one timeline. */
export interface SafekeeperTimelineView {
  id: number
  /** It runs and its HTTP API answered. */
  reachable: boolean
  /** null when it is not reachable or does not hold the timeline (no compute has run on it yet). */
  term: number | null
  flush_lsn: string | null
  commit_lsn: string | null
}

export interface TimelineOnSafekeepers {
  /** The highest commit_lsn among the reachable safekeepers of the newest term; null if none has one. */
  commit_lsn: string | null
  /** Every safekeeper of the cluster, in id order; empty without safekeepers. */
  safekeepers: SafekeeperTimelineView[]
}

/** Asks every safekeeper of the cluster about one timeline, all at once. */
export async function timelineOnSafekeepers(
  repoDir: string,
  tenantId: string,
  timelineId: string,
): Promise<TimelineOnSafekeepers> {
  const views = await Promise.all(
    safekeeperIds(repoDir).map(async (id): Promise<SafekeeperTimelineView> => {
      const none = { id, term: null, flush_lsn: null, commit_lsn: null }
      // Not running: no request to wait for.
      if (!serverState(safekeeperFiles(repoDir, id)).running) return { ...none, reachable: false }
      try {
        const t = await safekeeperClientOf(repoDir, id).timeline(tenantId, timelineId)
        return {
          id,
          reachable: true,
          term: t.acceptor_state.term,
          flush_lsn: t.flush_lsn,
          commit_lsn: t.commit_lsn,
        }
      } catch (err) {
        if (!(err instanceof ZenithError)) throw err
        return { ...none, reachable: err.kind === 'not_found' }
      }
    }),
  )
  return { commit_lsn: commitLsnOf(views), safekeepers: views }
}

/**
 * The highest commit_lsn among the safekeepers of the newest term that answered: one left behind in an
 * older term (down during an election) does not speak for the timeline.
 */
export function commitLsnOf(views: readonly SafekeeperTimelineView[]): string | null {
  const held = views.filter((v) => v.term !== null)
  if (held.length === 0) return null
  const newest = Math.max(...held.map((v) => v.term!))
  const commits = held.filter((v) => v.term === newest).map((v) => parseLsn(v.commit_lsn!))
  return formatLsn(Math.max(...commits))
}

/** A timeline as `safekeeper list` shows it. */
export interface SafekeeperTimelineRow {
  tenant_id: string
  timeline_id: string
  term: number
  flush_lsn: string
  commit_lsn: string
  /**
   * Bytes of WAL the running writer of the timeline has flushed and this safekeeper has not; null when
   * no compute writes to the timeline. Negative for a tail the compute does not have, which the next
   * election cuts.
   */
  lag_bytes: number | null
}

export interface SafekeeperRow {
  id: number
  status: 'running' | 'stopped'
  /** Stopped although nothing stopped it: killed or crashed (`zenith safekeeper status` shows its log). */
  died: boolean
  pid: number | null
  pg_port: number
  http_port: number
  /** From its HTTP API; null when it is not running or does not answer. */
  timelines: SafekeeperTimelineRow[] | null
}

export async function listSafekeepers(repoDir: string): Promise<SafekeeperRow[]> {
  const ids = safekeeperIds(repoDir)
  const held = await Promise.all(
    ids.map(async (id) => {
      const s = await safekeeperStatus(repoDir, id)
      const timelines = s.reachable
        ? await safekeeperClientOf(repoDir, id)
            .timelines()
            .catch((err: unknown) => {
              if (err instanceof ZenithError) return null
              throw err
            })
        : null
      return { s, timelines }
    }),
  )
  // Asked after the safekeepers: the compute's flush LSN only grows, so a lag is never understated.
  const flushes =
    ids.length === 0 ? new Map<string, Lsn>() : await writerFlushLsns(repoDir, loadClusterConfig(repoDir))
  const row = (t: SkTimelineInfo): SafekeeperTimelineRow => {
    const compute = flushes.get(t.timeline_id)
    return {
      tenant_id: t.tenant_id,
      timeline_id: t.timeline_id,
      term: t.acceptor_state.term,
      flush_lsn: t.flush_lsn,
      commit_lsn: t.commit_lsn,
      lag_bytes: compute === undefined ? null : compute - parseLsn(t.flush_lsn),
    }
  }
  return held.map(({ s, timelines }) => ({
    id: s.id,
    status: s.running ? 'running' : 'stopped',
    died: s.state === 'died',
    pid: s.pid,
    pg_port: s.pg_port,
    http_port: s.http_port,
    timelines: timelines === null ? null : timelines.map(row),
  }))
}
