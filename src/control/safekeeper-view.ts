/**
 * What the safekeepers hold, as the CLI shows it beside the pageserver's LSNs: one timeline on every
 * safekeeper (`timeline show`, `pg list`), and every safekeeper with its timelines and their lag behind
 * the compute (`safekeeper list`). A safekeeper that is stopped or does not answer is shown as such and
 * never fails the command.
 */
import { ZenithError } from '../lib/errors.js'
import { parseLsn } from '../postgres/lsn.js'
import type { SkTimelineInfo } from '../safekeeper/api-types.js'
import { type WriterWalLsns, writerWalPositions } from './computes.js'
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
  /** How many seconds its flush and commit LSN are behind the compute, as it measures them. */
  lag_seconds: SkTimelineInfo['lag_seconds'] | null
}

export interface TimelineOnSafekeepers {
  /** The highest commit_lsn among the reachable safekeepers of the newest term; null if none has one. */
  commit_lsn: string | null
  /** Its seconds behind the compute, as the safekeeper holding it measures them. */
  commit_lag_seconds: number | null
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
      // Not running: no request to wait for.
      if (!serverState(safekeeperFiles(repoDir, id)).running) return safekeeperViewOf(id, false, null)
      try {
        const t = await safekeeperClientOf(repoDir, id).timeline(tenantId, timelineId)
        return safekeeperViewOf(id, true, t)
      } catch (err) {
        if (!(err instanceof ZenithError)) throw err
        return safekeeperViewOf(id, err.kind === 'not_found', null)
      }
    }),
  )
  return onSafekeepersOf(views)
}

/** One safekeeper's view from its timeline detail; null values when it did not answer or lacks it. */
export function safekeeperViewOf(
  id: number,
  reachable: boolean,
  t: SkTimelineInfo | null,
): SafekeeperTimelineView {
  return {
    id,
    reachable,
    term: t?.acceptor_state.term ?? null,
    flush_lsn: t?.flush_lsn ?? null,
    commit_lsn: t?.commit_lsn ?? null,
    lag_seconds: t?.lag_seconds ?? null,
  }
}

/** The timeline across its safekeepers: the quorum's commit_lsn, with the seconds of the one holding it. */
export function onSafekeepersOf(views: SafekeeperTimelineView[]): TimelineOnSafekeepers {
  const holder = commitHolderOf(views)
  return {
    commit_lsn: holder?.commit_lsn ?? null,
    commit_lag_seconds: holder?.lag_seconds?.commit ?? null,
    safekeepers: views,
  }
}

/**
 * The safekeeper with the highest commit_lsn among those of the newest term that answered: one left
 * behind in an older term (down during an election) does not speak for the timeline.
 */
export function commitHolderOf(views: readonly SafekeeperTimelineView[]): SafekeeperTimelineView | null {
  const held = views.filter((v) => v.term !== null)
  if (held.length === 0) return null
  const newest = Math.max(...held.map((v) => v.term!))
  return held
    .filter((v) => v.term === newest)
    .reduce((a, b) => (parseLsn(b.commit_lsn!) > parseLsn(a.commit_lsn!) ? b : a))
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
  const writers =
    ids.length === 0
      ? new Map<string, WriterWalLsns>()
      : await writerWalPositions(repoDir, loadClusterConfig(repoDir))
  const row = (t: SkTimelineInfo): SafekeeperTimelineRow => {
    const writer = writers.get(t.timeline_id)
    return {
      tenant_id: t.tenant_id,
      timeline_id: t.timeline_id,
      term: t.acceptor_state.term,
      flush_lsn: t.flush_lsn,
      commit_lsn: t.commit_lsn,
      lag_bytes: writer === undefined ? null : parseLsn(writer.flush_lsn) - parseLsn(t.flush_lsn),
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
