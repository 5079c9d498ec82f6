/**
 * Compute endpoints: stock Postgres 15 on a branch. An endpoint is a branch (or a fixed LSN of one, for
 * read-only time travel), a port and its own settings, kept in the repo config.
 *
 * With safekeepers (docs/safekeeper.md), every start of a writable endpoint is an election: a new term
 * on a majority (sync-safekeepers.ts) gives the LSN the compute starts at, the pageserver is waited for
 * up to it, the compute is built from a basebackup at exactly that LSN and names the safekeepers in
 * `synchronous_standby_names = 'ANY <majority> (sk1, …)'`, and the safekeepers of the term pull from it.
 * A commit then returns once a majority has it on disk; a stop does not wait for the pageserver, which
 * reads the WAL from the safekeepers. Without safekeepers, the rest of this comment holds:
 *
 * Starting one: a datadir from the pageserver's fullbackup at what it has checkpointed (unless a datadir
 * of this endpoint is still current), postgresql.conf from templates/, `pg_ctl start`, and the
 * pageserver's WAL receiver pointed at it — the compute names the pageserver as its synchronous
 * standby, so a commit returns once the pageserver has the WAL. Stopping one: `pg_ctl stop -m fast`,
 * then waiting until the pageserver has ingested the compute's last record, so nothing is lost;
 * `destroy` also makes that durable and removes the endpoint and its datadir.
 *
 * Without safekeepers, the datadir's pg_wal is the only other copy of WAL the pageserver has not yet
 * flushed, so a stopped endpoint's datadir is reused on the next start when the branch has not moved on
 * without it; otherwise it is rebuilt from the pageserver.
 */

import { existsSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { resolveReadLsn } from '../engine/read-lsn.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort } from '../lib/host-port.js'
import { formatSize } from '../lib/units.js'
import type { TimelineInfo, WalReceiverStatus } from '../pageserver/api-types.js'
import { WAL_RECEIVER_APPLICATION_NAME } from '../pageserver/wal-receiver.js'
import { importLsnOf } from '../pgdata/import.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import {
  giveToPgUser,
  makePgOwnedDir,
  pgBinDir,
  pgCtlStart,
  pgCtlStop,
  pgUserCanEnter,
} from '../postgres/pg-bin.js'
import { type ControlFile, decodeControlFile } from '../postgres/pg-control.js'
import { extractTar } from '../postgres/tar-extract.js'
import { walQuietUntil } from '../postgres/wal-page.js'
import { PgClient } from '../protocol/client.js'
import { applicationNameOf, COMPUTE_TERM_SETTING } from '../safekeeper/config.js'
import { checkComputeSettings } from './compute-settings.js'
import { endpointRunning, writerWalLsnsOf } from './computes.js'
import {
  endpointDataDir,
  endpointDir,
  endpointLogFile,
  safekeeperClientOf,
  safekeeperConfigOf,
} from './layout.js'
import { type LadderRung, timelineLadder } from './lsn-ladder.js'
import { packageRoot } from './package-root.js'
import { type PageserverClient, settleWalReceiver } from './pageserver-client.js'
import { PortBusyError, portInUse, waitFor } from './process.js'
import {
  type ClusterConfig,
  checkName,
  type EndpointSpec,
  loadClusterConfig,
  saveClusterConfig,
  tenantOf,
  timelineOfBranch,
} from './repo-config.js'
import { type SafekeeperTimelineView, timelineOnSafekeepers } from './safekeeper-view.js'
import type { Step } from './steps.js'
import { adoptCompute, type Election, majorityOf, syncSafekeepers } from './sync-safekeepers.js'
import { type TenantPageserver, tenantPageserver, tenantPageserverClient } from './tenant-placement.js'

const CATCH_UP_TIMEOUT_MS = 60_000
/** A listing asks the pageserver about receivers, but must not hang on one that does not answer. */
const LIST_TIMEOUT_MS = 2_000
const RECEIVER_CONNECT_TIMEOUT_MS = 15_000

export class EndpointError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'EndpointError'
}

export interface EndpointRow {
  name: string
  branch: string
  tenant_id: string
  timeline_id: string
  port: number
  status: 'running' | 'stopped'
  connstr: string
  /** The fixed LSN of a read-only endpoint; null for one that follows its branch. */
  lsn: string | null
  /**
   * In listings: the pageserver's WAL receiver for a writer it streams from directly (no safekeepers);
   * null when it does not stream from this endpoint or does not answer.
   */
  walreceiver?: { status: WalReceiverStatus; error: string | null } | null
  /**
   * In listings, for an endpoint that follows its branch: the pageserver's LSNs of the branch (null when
   * it does not answer), the safekeepers' commit_lsn and each one's view (timelineOnSafekeepers; empty
   * without safekeepers). Null and empty for an endpoint at a fixed LSN.
   */
  last_record_lsn?: string | null
  disk_consistent_lsn?: string | null
  commit_lsn?: string | null
  safekeepers?: SafekeeperTimelineView[]
  /**
   * In listings, for an endpoint that follows its branch: the branch's LSN ladder (lsn-ladder.ts), from
   * this compute when it runs; rungs of what did not answer are null. Absent for a fixed LSN.
   */
  ladder?: LadderRung[]
}

export const connstrOf = (port: number) => `postgresql://postgres@127.0.0.1:${port}/postgres`

function endpointOf(c: ClusterConfig, name: string): EndpointSpec {
  const e = c.endpoints[name]
  if (!e) {
    const known = Object.keys(c.endpoints)
    throw new EndpointError(
      `unknown endpoint "${name}"${known.length ? `; endpoints: ${known.join(', ')}` : ''}`,
      { kind: 'not_found' },
    )
  }
  return e
}

/** Settings given as `key=value`, checked for what postgresql.conf can hold. */
export function parseSettings(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$/s.exec(p)
    if (!m) throw new EndpointError(`setting "${p}" is not key=value with a Postgres parameter name`)
    if (/[\n\r]/.test(m[2])) throw new EndpointError(`the value of setting ${m[1]} spans lines`)
    out[m[1]] = m[2]
  }
  return out
}

async function pickPort(c: ClusterConfig): Promise<number> {
  const taken = new Set(Object.values(c.endpoints).map((e) => e.port))
  for (let p = c.computePortBase; p < Math.min(65536, c.computePortBase + 1000); p++) {
    if (!taken.has(p) && !(await portInUse('127.0.0.1', p))) return p
  }
  throw new EndpointError(`no free port in ${c.computePortBase}..${c.computePortBase + 999}; pass --port`)
}

/** Checks a fixed LSN against the branch as a read there would be: received, after its start, kept by GC. */
function checkFixedLsn(lsn: Lsn, tl: TimelineInfo, branch: string): void {
  const last = parseLsn(tl.last_record_lsn)
  resolveReadLsn(
    {
      lastRecordLsn: last,
      quietUntil: walQuietUntil(last),
      startLsn: parseLsn(tl.ancestor_lsn ?? tl.initdb_lsn),
      gcCutoffLsn: parseLsn(tl.latest_gc_cutoff_lsn),
    },
    { lsn, what: 'LSN', where: `branch ${branch}` },
  )
}

export interface CreateEndpointOptions {
  branch: string
  name?: string
  tenantId?: string
  port?: number
  lsn?: string
  settings?: Record<string, string>
}

export async function createEndpoint(repoDir: string, opts: CreateEndpointOptions): Promise<EndpointRow> {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const timelineId = timelineOfBranch(c, tenantId, opts.branch)
  const name = checkName(opts.name ?? opts.branch, 'endpoint')
  if (c.endpoints[name]) throw new EndpointError(`endpoint "${name}" already exists`, { kind: 'conflict' })
  let port = opts.port
  if (port !== undefined) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new EndpointError(`port ${port} is not a port number in 1..65535`)
    const owner = Object.entries(c.endpoints).find(([, e]) => e.port === port)
    if (owner)
      throw new EndpointError(`port ${port} is already taken by endpoint "${owner[0]}"`, { kind: 'conflict' })
    if (await portInUse('127.0.0.1', port))
      throw new PortBusyError(`port ${port} on 127.0.0.1 is already in use`)
  } else port = await pickPort(c)
  const settings = opts.settings ?? {}
  checkComputeSettings(settings, { readOnly: opts.lsn !== undefined, safekeepers: c.safekeepers.length })
  let lsn: string | undefined
  if (opts.lsn !== undefined) {
    const at = parseLsn(opts.lsn)
    checkFixedLsn(
      at,
      await tenantPageserverClient(repoDir, tenantId).timeline(tenantId, timelineId),
      opts.branch,
    )
    lsn = formatLsn(at)
  }
  c.endpoints[name] = {
    tenantId,
    branch: opts.branch,
    timelineId,
    port,
    ...(lsn === undefined ? {} : { lsn }),
    settings,
  }
  saveClusterConfig(repoDir, c)
  return row(name, c.endpoints[name], 'stopped')
}

function row(name: string, e: EndpointSpec, status: EndpointRow['status']): EndpointRow {
  return {
    name,
    branch: e.branch,
    tenant_id: e.tenantId,
    timeline_id: e.timelineId,
    port: e.port,
    status,
    connstr: connstrOf(e.port),
    lsn: e.lsn ?? null,
  }
}

export async function listEndpoints(repoDir: string): Promise<EndpointRow[]> {
  const c = loadClusterConfig(repoDir)
  const timelines = new Map<string, Promise<TimelineInfo | null>>()
  const timelineOf = (e: EndpointSpec) => {
    let t = timelines.get(e.timelineId)
    if (!t) {
      // A listing works without the pageserver; it then has no receiver to show.
      t = tenantPageserverClient(repoDir, e.tenantId)
        .timeline(e.tenantId, e.timelineId, LIST_TIMEOUT_MS)
        .catch((err: unknown) => {
          if (err instanceof ZenithError) return null
          throw err
        })
      timelines.set(e.timelineId, t)
    }
    return t
  }
  const onSafekeepers = new Map<string, ReturnType<typeof timelineOnSafekeepers>>()
  const safekeepersOf = (e: EndpointSpec) => {
    let v = onSafekeepers.get(e.timelineId)
    if (!v) {
      v = timelineOnSafekeepers(repoDir, e.tenantId, e.timelineId)
      onSafekeepers.set(e.timelineId, v)
    }
    return v
  }
  const rows: EndpointRow[] = []
  for (const [name, e] of Object.entries(c.endpoints)) {
    const r = row(name, e, (await endpointRunning(repoDir, e, name)) ? 'running' : 'stopped')
    const follows = e.lsn === undefined
    const tl = follows ? await timelineOf(e) : null
    // The receiver serves the endpoint when it reads the safekeepers or this compute.
    r.walreceiver =
      tl && (c.safekeepers.length > 0 || tl.wal_source_connstr === r.connstr)
        ? { status: tl.walreceiver_status, error: tl.walreceiver_error }
        : null
    const sk = follows
      ? await safekeepersOf(e)
      : { commit_lsn: null, commit_lag_seconds: null, safekeepers: [] }
    r.last_record_lsn = tl?.last_record_lsn ?? null
    r.disk_consistent_lsn = tl?.disk_consistent_lsn ?? null
    r.commit_lsn = sk.commit_lsn
    r.safekeepers = sk.safekeepers
    if (follows) {
      // Asked after the safekeepers and the pageserver: the compute's WAL only grows, so no lag is
      // understated.
      const compute = r.status === 'running' ? await writerWalLsnsOf(e.port) : null
      r.ladder = timelineLadder(compute, sk, tl)
    }
    rows.push(r)
  }
  return rows
}

/**
 * The settings a hot standby must have at least as high as its primary had them: the primary logs them
 * in pg_control (PARAMETER_CHANGE), and a standby with less refuses to start.
 */
const STANDBY_MINIMUMS = [
  ['max_connections', 'maxConnections'],
  ['max_worker_processes', 'maxWorkerProcesses'],
  ['max_wal_senders', 'maxWalSenders'],
  ['max_prepared_transactions', 'maxPreparedXacts'],
  ['max_locks_per_transaction', 'maxLocksPerXact'],
] as const

/**
 * A read-only endpoint's own settings take the branch's values at its LSN where it gives none; one it
 * gives below them is refused in one line rather than left to a hot standby that will not start.
 */
function standbySettings(name: string, e: EndpointSpec, control: ControlFile): string[] {
  const own = new Map(Object.entries(e.settings).map(([k, v]) => [k.toLowerCase(), v]))
  const lines: string[] = []
  for (const [setting, field] of STANDBY_MINIMUMS) {
    const need = control[field]
    const given = own.get(setting)
    if (given === undefined) lines.push(`${setting} = ${need}`)
    else if (Number(given) < need) {
      throw new EndpointError(
        `endpoint "${name}" sets ${setting} = ${given}, below the ${need} that branch ${e.branch} had at ${e.lsn}: a hot standby needs at least that`,
        { hint: `pg create it again with -c ${setting}=${need} or more, or leave ${setting} out` },
      )
    }
  }
  return lines
}

/** Who acknowledges the compute's commits: its safekeepers by quorum, else the pageserver itself. */
function roleSettings(
  name: string,
  e: EndpointSpec,
  safekeepers: readonly number[],
  term: number | null,
  control: ControlFile | null,
): string[] {
  if (e.lsn !== undefined) {
    if (!control) throw new ZenithError('a read-only endpoint needs its pg_control', { kind: 'bug' })
    return [
      `# Read-only at ${e.lsn}: Postgres runs as a hot standby that never receives WAL, with the branch's`,
      '# own limits of then where this endpoint sets none.',
      'hot_standby = on',
      ...standbySettings(name, e, control),
    ]
  }
  if (safekeepers.length > 0) {
    const names = safekeepers.map((id) => applicationNameOf(id)).join(', ')
    return [
      `# A commit returns once a majority of the safekeepers has its WAL on disk.`,
      `synchronous_standby_names = 'ANY ${majorityOf(safekeepers.length)} (${names})'`,
      'synchronous_commit = on',
      '# The term this compute was elected for: its safekeepers check it before they pull WAL.',
      `${COMPUTE_TERM_SETTING} = '${term}'`,
    ]
  }
  return [
    '# The pageserver is the synchronous standby: a commit returns once the pageserver has received it.',
    `synchronous_standby_names = '${WAL_RECEIVER_APPLICATION_NAME}'`,
    'synchronous_commit = remote_write',
  ]
}

function renderConf(
  name: string,
  e: EndpointSpec,
  safekeepers: readonly number[],
  term: number | null,
  control: ControlFile | null,
): string {
  const role = roleSettings(name, e, safekeepers, term, control)
  const vars: Record<string, string> = {
    endpoint: name,
    branch: e.branch,
    tenant_id: e.tenantId,
    port: String(e.port),
    role_settings: role.join('\n'),
  }
  const template = path.join(packageRoot(), 'templates', 'postgresql.conf')
  let text = readFileSync(template, 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in vars)) throw new Error(`template ${template} uses unknown variable ${k}`)
    return vars[k]
  })
  const own = Object.entries(e.settings)
  if (own.length > 0) {
    text += `\n# Settings of endpoint ${name}\n`
    for (const [k, v] of own) text += `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'\n`
  }
  return text
}

/**
 * Whether the datadir left by an earlier run can be started again: it was shut down cleanly at or after
 * what the branch has (a datadir after a crash is reused too: Postgres recovers from its own WAL).
 */
function datadirIsCurrent(pgdata: string, tl: TimelineInfo): boolean {
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) return false
  const end = cleanShutdownLsn(pgdata)
  if (end === false) return existsSync(path.join(pgdata, 'global', 'pg_control'))
  return end >= parseLsn(tl.last_record_lsn)
}

/** The LSN a cleanly shut-down datadir ends at (its shutdown checkpoint's end); false after a crash. */
function cleanShutdownLsn(pgdata: string): Lsn | false {
  try {
    return importLsnOf(pgdata).lsn
  } catch {
    return false
  }
}

/** The pageserver's fullbackup of the endpoint's timeline at `lsn`, written into `pgdata` as `pg start` writes it. */
export async function fetchFullbackup(repoDir: string, e: EndpointSpec, lsn: string, pgdata: string) {
  const addr = tenantPageserver(repoDir, e.tenantId).config.listenPgAddr
  const client = await PgClient.connect({
    host: addr.host,
    port: addr.port,
    user: 'postgres',
    connectTimeoutMs: 10_000,
  })
  try {
    // In place over the old datadir (far fewer new inodes), durable, and pg_control written last: a
    // datadir cut short by a crash has none, so it is never started (datadirIsCurrent) nor kept.
    return await extractTar(client.copyOutBytes(`fullbackup ${e.tenantId} ${e.timelineId} ${lsn}`), pgdata, {
      replace: true,
      durable: true,
      commitMarker: 'global/pg_control',
    })
  } finally {
    await client.close()
  }
}

/**
 * The steps of `pg start`: when no endpoint has the name but a branch does, an endpoint with defaults is
 * created first. Starting a running endpoint is a no-op.
 */
export async function startEndpointSteps(
  repoDir: string,
  name: string,
  opts: { tenantId?: string } = {},
): Promise<{ steps: Step[]; endpoint: () => EndpointRow; alreadyRunning: boolean }> {
  let c = loadClusterConfig(repoDir)
  if (!c.endpoints[name]) {
    const tenantId = tenantOf(c, opts.tenantId)
    const timelineId = c.branches[tenantId]?.[name]
    if (!timelineId) {
      const known = Object.keys(c.endpoints)
      throw new EndpointError(
        `no endpoint or branch named "${name}"${known.length ? `; endpoints: ${known.join(', ')}` : ''}`,
        {
          kind: 'not_found',
          hint: '`zenith timeline list` shows the branches, `zenith pg list` the endpoints',
        },
      )
    }
    // Asked first, so that an unreachable pageserver leaves no endpoint behind.
    await tenantPageserverClient(repoDir, tenantId).timeline(tenantId, timelineId)
    await createEndpoint(repoDir, { branch: name, name, tenantId })
    c = loadClusterConfig(repoDir)
  }
  const e = endpointOf(c, name)
  if (opts.tenantId !== undefined && tenantOf(c, opts.tenantId) !== e.tenantId) {
    throw new EndpointError(`endpoint "${name}" belongs to tenant ${e.tenantId}, not ${opts.tenantId}`)
  }
  // Again at every start: the endpoint may predate a change of the cluster (its safekeepers, say).
  checkComputeSettings(e.settings, { readOnly: e.lsn !== undefined, safekeepers: c.safekeepers.length })
  const dir = endpointDir(repoDir, e.tenantId, name)
  const pgdata = endpointDataDir(repoDir, e.tenantId, name)
  const result = () => row(name, e, 'running')
  if (await endpointRunning(repoDir, e, name)) return { steps: [], endpoint: result, alreadyRunning: true }

  const placed = tenantPageserver(repoDir, e.tenantId)
  const { client: ps, logFile: psLog } = placed
  const fixed = e.lsn !== undefined
  if (!fixed) {
    for (const [other, o] of Object.entries(c.endpoints)) {
      if (other === name || o.lsn !== undefined || o.timelineId !== e.timelineId) continue
      if (await endpointRunning(repoDir, o, other)) {
        throw new EndpointError(
          `endpoint "${other}" is already running on branch ${e.branch}: a branch takes one writer; stop it first`,
          { kind: 'conflict' },
        )
      }
    }
  }
  if (await portInUse('127.0.0.1', e.port)) {
    throw new PortBusyError(
      `port ${e.port} on 127.0.0.1 is already in use; endpoint "${name}" cannot start there`,
    )
  }
  const tl = await ps.timeline(e.tenantId, e.timelineId)
  // With safekeepers the WAL is on a quorum, not in the old datadir: every start is a new term.
  const sks = fixed ? [] : c.safekeepers
  const rebuild = fixed || sks.length > 0 || !datadirIsCurrent(pgdata, tl)
  let lsn = e.lsn ?? tl.last_record_lsn
  const binDir = pgBinDir(c.pgDistribDir)
  const steps: Step[] = []
  const clients = sks.map((id) => safekeeperClientOf(repoDir, id))
  let election: Election | null = null
  if (sks.length > 0) {
    steps.push({
      title: `elect a term on safekeepers ${sks.join(', ')}`,
      run: async () => {
        election = await syncSafekeepers(clients, e.tenantId, e.timelineId)
        if (election.startLsn === null) return `term ${election.term}: the timeline is new to the safekeepers`
        lsn = formatLsn(election.startLsn)
        const behind = election.behind.length ? `; behind: ${election.behind.join(', ')}` : ''
        return `term ${election.term} on safekeepers ${election.voters.join(', ')} at ${lsn}${behind}`
      },
    })
    steps.push({
      title: 'wait for the pageserver to have what the safekeepers committed',
      run: async () => {
        await ps.setSafekeepers(e.tenantId, e.timelineId, safekeeperAddrs(repoDir, sks))
        await waitIngested(placed, e, parseLsn(lsn), 'safekeepers')
        return `the pageserver has ${e.branch} up to ${lsn}`
      },
    })
  }
  if (rebuild && !fixed && sks.length === 0) {
    // The new compute's pg_wal starts at the basebackup: WAL below it that the pageserver holds only in
    // memory would be lost with a pageserver restart, which then asks the compute for WAL it never had.
    steps.push({
      title: `checkpoint ${e.branch} on the pageserver`,
      run: async () => {
        lsn = await checkpointForStart(ps, e)
        return `the pageserver has ${e.branch} on disk up to ${lsn}`
      },
    })
  }
  if (rebuild) {
    steps.push({
      title: `basebackup of ${e.branch} at ${lsn} from the pageserver`,
      run: async () => {
        await makePgOwnedDir(dir, 0o755)
        if (!(await pgUserCanEnter(dir))) {
          throw new EndpointError(
            `the postgres OS user, which runs computes when zenith runs as root, cannot enter ${dir}: a parent directory is closed to it; use a --repo-dir it can reach (e.g. under /tmp or /srv)`,
          )
        }
        await makePgOwnedDir(pgdata, 0o700)
        const { files, bytes } = await fetchFullbackup(repoDir, e, lsn, pgdata)
        if (fixed) await fs.writeFile(path.join(pgdata, 'standby.signal'), '')
        return `basebackup of ${e.branch} at ${lsn}: ${files} files, ${formatSize(bytes)}`
      },
    })
  }
  steps.push({
    title: 'write postgresql.conf',
    run: async () => {
      const term = (election as Election | null)?.term ?? null
      // Only a hot standby needs the branch's limits from pg_control.
      const control = fixed
        ? decodeControlFile(readFileSync(path.join(pgdata, 'global', 'pg_control')))
        : null
      await fs.writeFile(path.join(pgdata, 'postgresql.conf'), renderConf(name, e, sks, term, control))
      await giveToPgUser(pgdata)
    },
  })
  steps.push({
    title: `start postgres on 127.0.0.1:${e.port}`,
    run: async () => {
      await pgCtlStart(pgdata, {
        logFile: endpointLogFile(repoDir, e.tenantId, name),
        binDir,
        timeoutSec: 60,
      })
    },
  })
  if (sks.length > 0) {
    steps.push({
      title: 'make it the compute of the new term on the safekeepers',
      run: async () => {
        const el = election!
        const systemId = String(
          decodeControlFile(readFileSync(path.join(pgdata, 'global', 'pg_control'))).systemIdentifier,
        )
        const { accepted, failures } = await adoptCompute(clients, e.tenantId, e.timelineId, el, {
          connstr: connstrOf(e.port),
          systemId,
          startLsn: lsn,
        })
        if (accepted < majorityOf(clients.length)) {
          throw new EndpointError(
            `only ${accepted} of ${clients.length} safekeepers took the compute of term ${el.term}: ${failures.join('; ')}`,
            { kind: 'unavailable' },
          )
        }
        await ps.setSafekeepers(e.tenantId, e.timelineId, safekeeperAddrs(repoDir, sks))
        return `term ${el.term}: ${accepted} of ${clients.length} safekeepers pull from it`
      },
    })
  } else if (!fixed) {
    steps.push({
      title: 'connect the pageserver to its WAL',
      run: async () => {
        const connstr = connstrOf(e.port)
        await ps.setWalSource(e.tenantId, e.timelineId, connstr)
        const { settled, status, error } = await settleWalReceiver(
          ps,
          e.tenantId,
          e.timelineId,
          RECEIVER_CONNECT_TIMEOUT_MS,
        )
        if (status === 'broken') {
          // Its commits would wait for ever for the pageserver: the compute does not stay up.
          await pgCtlStop(pgdata, 'fast', { binDir: pgBinDir(c.pgDistribDir) }).catch(() => undefined)
          throw new EndpointError(`the pageserver cannot stream WAL from ${connstr}: ${error}`, {
            kind: 'conflict',
            logFile: psLog,
          })
        }
        if (!settled) {
          throw new EndpointError(
            `the pageserver did not start streaming WAL from ${connstr} within ${RECEIVER_CONNECT_TIMEOUT_MS / 1000} s` +
              (error ? `: ${error}` : ''),
            { kind: 'external', logFile: psLog },
          )
        }
      },
    })
  }
  return { steps, endpoint: result, alreadyRunning: false }
}

/** Where the pageserver finds the safekeepers, as its connection manager takes them. */
/** The addresses of safekeepers as a pageserver streams WAL from them. */
export function safekeeperAddrs(repoDir: string, ids: readonly number[]) {
  return ids.map((id) => {
    const cfg = safekeeperConfigOf(repoDir, id)
    return { id, pg: formatHostPort(cfg.listenPgAddr), http: formatHostPort(cfg.listenHttpAddr) }
  })
}

/**
 * Makes what the pageserver has of the timeline durable and returns that LSN, where a writer without
 * safekeepers may start: nothing may be in the pageserver's memory only below it.
 */
async function checkpointForStart(ps: PageserverClient, e: EndpointSpec): Promise<string> {
  const { disk_consistent_lsn: durable } = await ps.checkpoint(e.tenantId, e.timelineId)
  const { last_record_lsn: last } = await ps.timeline(e.tenantId, e.timelineId)
  if (parseLsn(durable) < parseLsn(last)) {
    throw new EndpointError(
      `the pageserver has branch ${e.branch} up to ${last} but on disk only up to ${durable} after a checkpoint: ` +
        'a compute started there could lose the WAL in between',
      {
        kind: 'conflict',
        hint: 'is another compute still writing to the branch? stop it, then start this endpoint again',
      },
    )
  }
  return durable
}

/**
 * Waits until the pageserver has ingested the timeline up to `lsn`: what a stopped compute wrote (its
 * datadir still has the rest), or what the safekeepers committed (they have it).
 */
async function waitIngested(
  { client: ps, logFile }: TenantPageserver,
  e: EndpointSpec,
  lsn: Lsn,
  from: 'compute' | 'safekeepers',
): Promise<void> {
  let at = ''
  let broken: string | null = null
  const ok = await waitFor(async () => {
    const t = await ps.timeline(e.tenantId, e.timelineId)
    at = t.last_record_lsn
    // A receiver that stopped for good (ingest refused a record, say) will not get there: no waiting.
    if (t.walreceiver_status === 'broken') broken = t.walreceiver_error ?? 'no reason given'
    return parseLsn(at) >= lsn || broken !== null
  }, CATCH_UP_TIMEOUT_MS)
  if (broken !== null) {
    const rest =
      from === 'compute'
        ? `the compute's WAL past ${at} is kept in the endpoint's datadir`
        : `the safekeepers keep its WAL past ${at}`
    throw new EndpointError(
      `the pageserver is not ingesting the WAL of branch ${e.branch}: ${broken}; ${rest}`,
      {
        kind: 'external',
        logFile,
        hint: 'docs/postgres-on-zenith.md lists the records and settings zenith applies',
      },
    )
  }
  if (ok) return
  if (from === 'compute') {
    throw new EndpointError(
      `the pageserver has branch ${e.branch} up to ${at}, the compute wrote up to ${formatLsn(lsn)}; the rest is ` +
        `still in the endpoint's datadir: start it again so the pageserver can catch up`,
      { kind: 'conflict' },
    )
  }
  throw new EndpointError(
    `the pageserver has branch ${e.branch} up to ${at}, the safekeepers committed up to ${formatLsn(lsn)}, and it did not get the rest from them within ${CATCH_UP_TIMEOUT_MS / 1000} s`,
    {
      kind: 'timeout',
      logFile,
      hint: '`zenith timeline show` shows its WAL receiver',
    },
  )
}

export interface StopEndpointResult {
  wasRunning: boolean
  /** The compute's last LSN, when it was shut down cleanly. */
  lsn: string | null
  destroyed: boolean
}

export async function stopEndpoint(
  repoDir: string,
  name: string,
  opts: { destroy?: boolean; mode?: 'fast' | 'immediate' } = {},
): Promise<StopEndpointResult> {
  const c = loadClusterConfig(repoDir)
  const e = endpointOf(c, name)
  const pgdata = endpointDataDir(repoDir, e.tenantId, name)
  const mode = opts.mode ?? 'fast'
  if (opts.destroy && mode === 'immediate' && e.lsn === undefined && c.safekeepers.length === 0) {
    throw new EndpointError(
      `endpoint "${name}" writes to branch ${e.branch}: destroying it needs a clean stop, so that the pageserver has all its WAL; drop --immediate`,
      { kind: 'conflict' },
    )
  }
  const hasDatadir = existsSync(path.join(pgdata, 'PG_VERSION'))
  const binDir = pgBinDir(c.pgDistribDir)
  const { wasRunning } = hasDatadir ? await pgCtlStop(pgdata, mode, { binDir }) : { wasRunning: false }
  let lsn: Lsn | null = null
  const follows = e.lsn === undefined
  // A datadir that was never shut down cleanly (a crash) has no final LSN to wait for: its WAL is
  // recovered and streamed on the next start.
  const clean = hasDatadir && mode === 'fast' && cleanShutdownLsn(pgdata)
  // With safekeepers, a clean stop waited until they had every byte (a walsender exits only once its
  // synchronous standbys confirm it): the pageserver reads it from them, in its own time.
  const onQuorum = c.safekeepers.length > 0
  if (follows && clean !== false && !onQuorum) {
    lsn = clean
    const placed = tenantPageserver(repoDir, e.tenantId)
    const ps = placed.client
    try {
      await waitIngested(placed, e, lsn, 'compute')
    } catch (err) {
      if (!(err instanceof ZenithError) || !wasRunning) throw err
      throw new EndpointError(`stopped endpoint ${name}, but ${err.message}`, {
        kind: err.kind,
        hint: err.hint,
        logFile: err.logFile,
        cause: err,
      })
    }
    await ps.setWalSource(e.tenantId, e.timelineId, null)
    // The datadir is about to go: what the pageserver holds only in memory must reach its disk first.
    if (opts.destroy) await ps.checkpoint(e.tenantId, e.timelineId)
  }
  if (opts.destroy) {
    if (follows && hasDatadir && clean === false && !onQuorum) {
      throw new EndpointError(
        `endpoint "${name}" was not shut down cleanly, so the pageserver may lack its last WAL: start it again and stop it without --immediate before destroying it`,
        { kind: 'conflict' },
      )
    }
    await fs.rm(endpointDir(repoDir, e.tenantId, name), { recursive: true, force: true })
    const fresh = loadClusterConfig(repoDir)
    delete fresh.endpoints[name]
    saveClusterConfig(repoDir, fresh)
  }
  return { wasRunning, lsn: lsn === null ? null : formatLsn(lsn), destroyed: opts.destroy ?? false }
}
