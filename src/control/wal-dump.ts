/**
 * `zenith wal dump`: decode a directory of WAL segments and print each record, or statistics. The
 * directory is given (`--path`), or it is where a branch's WAL is kept (`--branch`): the segments of the
 * safekeeper that holds the most of it, or without safekeepers the pg_wal of the branch's compute.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import { decodeControlFile as decodePgControl } from '../postgres/pg-control.js'
import { openWalDir, type WalDir, type WalFormat, walContinuesAfter } from '../postgres/wal-dir.js'
import type { WalStop } from '../postgres/wal-reader.js'
import { formatRecordLine, recordToJson, WalStats } from '../postgres/waldump-format.js'
import { readControlFile, type SafekeeperState, SK_CONTROL_FILE_NAME } from '../safekeeper/control-file.js'
import { endpointRunning } from './computes.js'
import { endpointDataDir, safekeeperDir } from './layout.js'
import type { LineWriter } from './line-writer.js'
import { type ClusterConfig, loadClusterConfig, tenantOf, timelineOfBranch } from './repo-config.js'
import { timelineOnSafekeepers } from './safekeeper-view.js'

export interface WalDumpOptions {
  /** A directory of segment files; or `branch`, whose WAL is found in the repo dir. */
  path?: string
  branch?: string
  tenantId?: string
  /** The cluster a branch belongs to. */
  repoDir: string
  start?: Lsn
  end?: Lsn
  timeline?: number
  json?: boolean
  stats?: boolean
}

export interface WalDumpResult {
  wal: WalDir
  /** Where a branch's WAL was read from, in words; absent for --path. */
  source?: string
  records: number
  stop: WalStop
  /** One line saying where and why reading stopped, for stderr. */
  summary: string
  stats?: WalStats
}

/** The WAL could not be read as far as it should have been: damage, or a requested end beyond it. */
export class WalDumpError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalDumpError'
}

/** A directory holding a branch's WAL, and the record where the WAL in it begins. */
interface BranchWalSource {
  dir: string
  start: Lsn
  /** In words: `safekeeper 2 (flush_lsn 0/1A2B3C8)`, `the pg_wal of endpoint main`. */
  what: string
  /** Known to a safekeeper, whose first segment begins where the timeline does. */
  format?: WalFormat
  timeline?: number
}

async function branchWalSource(
  repoDir: string,
  opts: { branch: string; tenantId?: string },
): Promise<BranchWalSource> {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const timelineId = timelineOfBranch(c, tenantId, opts.branch)
  return c.safekeepers.length > 0
    ? safekeeperSource(repoDir, c.safekeepers, tenantId, timelineId, opts.branch)
    : computeSource(repoDir, c, tenantId, timelineId, opts.branch)
}

/**
 * The safekeeper whose flush_lsn is highest: a running one says over HTTP, a stopped one's control
 * file does (its flush record LSN, persisted at most a second behind). Its segment files are Postgres'
 * own, so they are read like a pg_wal, from where its WAL of the timeline begins (local_start_lsn).
 */
async function safekeeperSource(
  repoDir: string,
  ids: readonly number[],
  tenantId: string,
  timelineId: string,
  branch: string,
): Promise<BranchWalSource> {
  const live = await timelineOnSafekeepers(repoDir, tenantId, timelineId)
  let best: { id: number; dir: string; flush: Lsn; state: SafekeeperState } | null = null
  for (const id of ids) {
    const dir = path.join(safekeeperDir(repoDir, id), tenantId, timelineId)
    const control = path.join(dir, SK_CONTROL_FILE_NAME)
    if (!existsSync(control)) continue
    const state = readControlFile(control)
    const answered = live.safekeepers.find((v) => v.id === id)?.flush_lsn
    const flush = answered ? parseLsn(answered) : state.flushRecordLsn
    if (best === null || flush > best.flush) best = { id, dir, flush, state }
  }
  if (best === null) {
    throw new WalDumpError(
      `no safekeeper holds the WAL of branch ${branch} (timeline ${timelineId}): looked in ${ids
        .map((id) => path.join(safekeeperDir(repoDir, id), tenantId, timelineId))
        .join(', ')}`,
      {
        kind: 'not_found',
        hint: 'a timeline reaches the safekeepers when a compute first runs on it: `zenith pg start`',
      },
    )
  }
  const { state } = best
  return {
    dir: best.dir,
    start: state.localStartLsn,
    what: `safekeeper ${best.id} (flush_lsn ${formatLsn(best.flush)})`,
    format: { segmentSize: state.walSegSize, systemId: BigInt(state.systemId) },
    timeline: state.pgTimeline,
  }
}

/**
 * Without safekeepers the branch's WAL is in its writer's pg_wal (a running one first). It is read from
 * the redo point of the compute's last checkpoint (pg_control), a record Postgres itself starts from:
 * a datadir made by basebackup has no WAL before its checkpoint, and zeros in front of it.
 */
async function computeSource(
  repoDir: string,
  c: ClusterConfig,
  tenantId: string,
  timelineId: string,
  branch: string,
): Promise<BranchWalSource> {
  const writers = Object.entries(c.endpoints).filter(
    ([name, e]) =>
      e.tenantId === tenantId &&
      e.timelineId === timelineId &&
      e.lsn === undefined &&
      existsSync(path.join(endpointDataDir(repoDir, tenantId, name), 'global', 'pg_control')),
  )
  if (writers.length === 0) {
    throw new WalDumpError(`no endpoint of branch ${branch} has a datadir whose pg_wal could be read`, {
      kind: 'not_found',
      hint: `start a compute on the branch (\`zenith pg start ${branch}\`), or give --path`,
    })
  }
  let chosen = writers[0]
  for (const w of writers) {
    if (await endpointRunning(repoDir, w[1], w[0])) {
      chosen = w
      break
    }
  }
  const pgdata = endpointDataDir(repoDir, tenantId, chosen[0])
  const cf = decodePgControl(readFileSync(path.join(pgdata, 'global', 'pg_control')))
  return {
    dir: path.join(pgdata, 'pg_wal'),
    start: cf.checkPointCopy.redo,
    what: `the pg_wal of endpoint ${chosen[0]}`,
  }
}

export async function dumpWal(opts: WalDumpOptions, out: LineWriter): Promise<WalDumpResult> {
  if ((opts.path === undefined) === (opts.branch === undefined)) {
    throw new WalDumpError('give exactly one of --path and --branch', {
      hint: '--path reads a directory of WAL segments, --branch the WAL the cluster keeps for a branch',
    })
  }
  const source =
    opts.branch === undefined
      ? null
      : await branchWalSource(opts.repoDir, { branch: opts.branch, tenantId: opts.tenantId })
  const { wal, reader } = await openWalDir(source?.dir ?? opts.path!, {
    // A branch's WAL begins at a known record; a --start of the user's is searched for from its page.
    start: opts.start ?? source?.start,
    startIsRecord: opts.start === undefined && source !== null,
    end: opts.end,
    timeline: opts.timeline ?? source?.timeline,
    format: source?.format,
  })
  const stats = opts.stats ? new WalStats() : undefined
  let records = 0
  for await (const rec of reader.records()) {
    records++
    if (stats) stats.add(rec)
    else if (opts.json) await out.line(JSON.stringify(recordToJson(rec)))
    else await out.line(formatRecordLine(rec))
    if (!out.open) break
  }
  const stop = reader.stop ?? {
    kind: 'end-of-input' as const,
    lsn: 0,
    reason: 'output closed',
    lastRecordLsn: undefined,
  }
  if (stats) {
    if (opts.json) await out.line(JSON.stringify(stats.toJson()))
    else for (const line of stats.format()) await out.line(line)
  }
  await out.flush()

  const last =
    stop.lastRecordLsn === undefined ? 'no record read' : `last record at ${formatLsn(stop.lastRecordLsn)}`
  if (opts.end !== undefined && stop.kind !== 'end-reached' && out.open) {
    throw new WalDumpError(`WAL stops before --end ${formatLsn(opts.end)}: ${stop.reason} (${last})`)
  }
  if (stop.kind === 'invalid' && (await walContinuesAfter(wal, stop.lsn))) {
    throw new WalDumpError(
      `damaged WAL at ${formatLsn(stop.lsn)}: ${stop.reason}; valid WAL follows in later segments (${last})`,
    )
  }
  const summary =
    stop.kind === 'end-reached'
      ? `${records} records up to ${formatLsn(stop.lsn)}`
      : `${records} records; end of WAL at ${formatLsn(stop.lsn)}: ${stop.reason} (${last})`
  return {
    wal,
    ...(source === null ? {} : { source: `WAL of branch ${opts.branch} from ${source.what}: ${source.dir}` }),
    records,
    stop,
    summary,
    stats,
  }
}
