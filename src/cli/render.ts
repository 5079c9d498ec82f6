/**
 * Renderings of what control gathers: endpoints, the state of a server (the pageserver, a safekeeper),
 * the safekeepers with their timelines, a timeline's detail with the safekeepers' view, the branch tree.
 */
import type { EndpointRow } from '../control/endpoints.js'
import type { LadderRung } from '../control/lsn-ladder.js'
import type { PageserverStatus, RemoteStorageStatus } from '../control/pageserver-process.js'
import type { PageserverRow } from '../control/pageservers.js'
import type { SafekeeperStatus } from '../control/safekeeper-process.js'
import type { SafekeeperRow, SafekeeperTimelineView } from '../control/safekeeper-view.js'
import type { ServerState } from '../control/server-process.js'
import type { StorageControllerStatus } from '../control/storage-controller-process.js'
import type { BranchDetail, BranchRow } from '../control/tenants.js'
import { formatSize } from '../lib/units.js'
import type { Output, TreeNode } from './output.js'

export function renderEndpoints(
  out: Output,
  rows: readonly EndpointRow[],
  opts: { ids?: boolean } = {},
): string {
  const ids = opts.ids === true
  // A cluster without safekeepers has no commit LSN to show.
  const sk = rows.some((e) => (e.safekeepers ?? []).length > 0)
  const receiver = (e: EndpointRow) => {
    const rx = e.walreceiver
    if (!rx) return '-'
    if (rx.status === 'streaming') return out.good(rx.status)
    return rx.status === 'broken' ? out.bad(rx.status) : out.warn(rx.status)
  }
  const table = out.table(
    [
      'ENDPOINT',
      'BRANCH',
      ...(ids ? ['TENANT', 'TIMELINE'] : []),
      'PORT',
      'STATUS',
      'LSN',
      'PS LAST',
      'PS DISK',
      ...(sk ? ['SK COMMIT'] : []),
      'LAG',
      'WAL RECEIVER',
      'CONNSTR',
    ],
    rows.map((e) => [
      e.name,
      e.branch,
      ...(ids ? [e.tenant_id, e.timeline_id] : []),
      String(e.port),
      e.status === 'running' ? out.good(e.status) : e.status,
      e.lsn ?? 'latest',
      e.last_record_lsn ?? '-',
      e.disk_consistent_lsn ?? '-',
      ...(sk ? [e.commit_lsn ?? '-'] : []),
      renderLagColumn(e.ladder),
      receiver(e),
      e.connstr,
    ]),
  )
  // A broken receiver needs someone to act: say why under the table, where it cannot be missed.
  const broken = rows.flatMap((e) =>
    e.walreceiver?.status === 'broken'
      ? [
          out.bad(
            `endpoint ${e.name}: the WAL of branch ${e.branch} is not being ingested: ${e.walreceiver.error}`,
          ),
        ]
      : [],
  )
  const unreachable = [
    ...new Set(rows.flatMap((e) => (e.safekeepers ?? []).filter((v) => !v.reachable).map((v) => v.id))),
  ]
  const notes = [
    ...broken,
    ...(unreachable.length > 0
      ? [
          out.warn(
            `safekeeper ${unreachable.join(', ')} not reachable: SK COMMIT counts only those that answer`,
          ),
        ]
      : []),
  ]
  return [table, ...(notes.length > 0 ? ['', ...notes] : [])].join('\n')
}

/** `running (pid N), http …, pg …`, with `, not answering` when its HTTP API does not. */
export function renderServerState(out: Output, p: PageserverStatus | SafekeeperStatus): string {
  const state = p.running ? out.good(`running (pid ${p.pid})`) : out.bad(p.state)
  return `${state}, http ${p.http}, pg ${p.pg}${p.running && !p.reachable ? out.warn(', not answering') : ''}`
}

/** `running (pid N), http …`, with `, not answering` when its HTTP API does not. */
export function renderStorageControllerState(out: Output, s: StorageControllerStatus): string {
  const state = s.running ? out.good(`running (pid ${s.pid})`) : out.bad(s.state)
  return `${state}, http ${s.http}${s.running && !s.reachable ? out.warn(', not answering') : ''}`
}

/** Where remote storage is: a directory, or a bucket with its endpoint and region when set. */
export function renderRemoteStorage(r: RemoteStorageStatus | null): string {
  if (r === null) return 'none'
  const extra = [r.endpoint && `endpoint ${r.endpoint}`, r.region && `region ${r.region}`].filter(Boolean)
  return extra.length === 0 ? r.location : `${r.location} (${extra.join(', ')})`
}

/** For a server that died: where its log is and how it ends, one line each; else none. */
export function renderDied(p: ServerState): string[] {
  if (p.state !== 'died') return []
  const tail = p.last_log_lines ?? []
  const head = tail.length > 0 ? `its log ${p.log_file} ends:` : `its log ${p.log_file} is empty`
  return [head, ...tail.map((l) => `  ${l}`)]
}

/** Behind the compute; a tail the compute does not have (cut at the next election) is `ahead`. */
const lag = (bytes: number | null) =>
  bytes === null ? '-' : bytes < 0 ? `ahead ${formatSize(-bytes)}` : formatSize(bytes)

/** A table of the safekeepers, then one of the timelines of those that answered. */
export function renderPageservers(out: Output, rows: readonly PageserverRow[]): string {
  return out.table(
    ['ID', 'STATUS', 'PID', 'PG PORT', 'HTTP PORT', 'TENANTS'],
    rows.map((r) => [
      String(r.id),
      r.status === 'running' ? out.good(r.status) : r.status === 'died' ? out.bad(r.status) : r.status,
      r.pid === null ? '-' : String(r.pid),
      String(r.pg_port),
      String(r.http_port),
      r.tenants === null ? '-' : String(r.tenants),
    ]),
  )
}

export function renderSafekeepers(out: Output, rows: readonly SafekeeperRow[]): string {
  const status = (r: SafekeeperRow) =>
    r.status === 'running' ? out.good(r.status) : r.died ? out.bad('died') : r.status
  const safekeepers = out.table(
    ['ID', 'STATUS', 'PID', 'PG PORT', 'HTTP PORT', 'TIMELINES'],
    rows.map((r) => [
      String(r.id),
      status(r),
      r.pid === null ? '-' : String(r.pid),
      String(r.pg_port),
      String(r.http_port),
      r.timelines === null ? '-' : String(r.timelines.length),
    ]),
  )
  const timelines = rows.flatMap((r) =>
    (r.timelines ?? []).map((t) => [
      String(r.id),
      t.tenant_id,
      t.timeline_id,
      String(t.term),
      t.flush_lsn,
      t.commit_lsn,
      lag(t.lag_bytes),
    ]),
  )
  if (timelines.length === 0) return safekeepers
  return `${safekeepers}\n\n${out.table(['SAFEKEEPER', 'TENANT', 'TIMELINE', 'TERM', 'FLUSH LSN', 'COMMIT LSN', 'LAG'], timelines)}`
}

/** Seconds of lag as a person reads them: tenths, and whole seconds past a minute. */
const seconds = (s: number) => (s >= 60 ? `${Math.round(s)} s` : `${s.toFixed(1)} s`)

/**
 * `pg list`'s LAG: the safekeepers' commit_lsn (`sk`) and the pageserver's last_record_lsn (`ps`), each
 * as bytes/seconds behind the compute; `-` for what is not known, and for an endpoint at a fixed LSN.
 */
function renderLagColumn(ladder: readonly LadderRung[] | undefined): string {
  const part = (label: string, r: LadderRung | undefined) =>
    r && (r.lag_bytes !== null || r.lag_seconds !== null)
      ? `${label} ${lag(r.lag_bytes)}/${r.lag_seconds === null ? '-' : seconds(r.lag_seconds)}`
      : null
  const parts = [
    part(
      'sk',
      ladder?.find((r) => r.name === 'commit'),
    ),
    part(
      'ps',
      ladder?.find((r) => r.name === 'last_record'),
    ),
  ].filter((p) => p !== null)
  return parts.length === 0 ? '-' : parts.join(', ')
}

const RUNG_LABELS: Record<LadderRung['name'], string> = {
  compute_insert: 'compute insert',
  compute_flush: 'compute flush',
  safekeeper_flush: 'safekeeper flush',
  commit: 'commit_lsn',
  last_record: 'last_record_lsn',
  disk_consistent: 'disk_consistent_lsn',
  remote_consistent: 'remote_consistent_lsn',
  gc_cutoff: 'latest_gc_cutoff_lsn',
}

/**
 * The LSN ladder as `key  value` lines, top (the compute) to bottom: each rung's LSN, then how far it is
 * behind in bytes and in seconds where that is known, `caught up` at none of either.
 */
function ladderFields(out: Output, ladder: readonly LadderRung[]): [string, string][] {
  const width = Math.max(...ladder.map((r) => (r.lsn ?? '-').length))
  return ladder.map((r) => {
    const label = r.name === 'safekeeper_flush' ? `safekeeper ${r.safekeeper_id} flush` : RUNG_LABELS[r.name]
    const lsn = (r.lsn ?? '-').padEnd(width)
    const behind = [
      ...(r.lag_bytes !== null ? [`${lag(r.lag_bytes)} behind`] : []),
      ...(r.lag_seconds !== null ? [seconds(r.lag_seconds)] : []),
    ]
    const caughtUp = (r.lag_bytes ?? 0) === 0 && (r.lag_seconds ?? 0) === 0
    // The compute is the top: nothing to be behind. The GC cutoff is how far back reads go, not a lag.
    const bare = r.name === 'compute_insert' || r.name === 'compute_flush' || r.name === 'gc_cutoff'
    const tail = bare || behind.length === 0 ? '' : caughtUp ? out.good('caught up') : behind.join(', ')
    return [label, tail === '' ? lsn.trimEnd() : `${lsn}  ${tail}`]
  })
}

/** One safekeeper's state of a timeline, for a `key  value` line. */
function renderSafekeeperView(out: Output, v: SafekeeperTimelineView): string {
  if (!v.reachable) return out.warn('unreachable')
  if (v.term === null) return out.dim('does not hold the timeline')
  return `term ${v.term}, flush_lsn ${v.flush_lsn}, commit_lsn ${v.commit_lsn}`
}

/**
 * A timeline's detail: the LSN ladder from its running writer through the safekeepers' flush and commit
 * LSNs to the pageserver's, each with its lag; sizes, the WAL receiver, and each safekeeper's state.
 */
export function renderTimeline(out: Output, t: BranchDetail): string {
  const source =
    t.walreceiver_safekeeper != null
      ? ` from safekeeper ${t.walreceiver_safekeeper}`
      : t.wal_source_connstr
        ? ` from ${t.wal_source_connstr}`
        : ''
  const rows: [string, string][] = [
    ['branch', t.branch ?? '-'],
    ['tenant_id', t.tenant_id],
    ['timeline_id', t.timeline_id],
    ['pageserver', String(t.pageserver_id)],
    ['ancestor', t.ancestor_branch ? `${t.ancestor_branch} @${t.ancestor_lsn}` : '-'],
    ...ladderFields(out, t.ladder),
    ['current_logical_size', formatSize(t.current_logical_size)],
    ['wal receiver', `${t.walreceiver_status}${source}`],
    ['last_received_msg_lsn', t.last_received_msg_lsn ?? '-'],
    ...(t.walreceiver_error ? ([['wal receiver error', t.walreceiver_error]] as [string, string][]) : []),
    ...t.safekeepers.map((v) => [`safekeeper ${v.id}`, renderSafekeeperView(out, v)] as [string, string]),
  ]
  return out.fields(rows)
}

/** Branches as a tree: each child under its ancestor with the LSN it branched at. */
export function renderBranchTree(out: Output, rows: readonly BranchRow[]): string {
  const nodes = new Map<string, { label: string; children: TreeNode[] }>()
  const roots: TreeNode[] = []
  for (const r of rows) {
    const at = r.ancestor_lsn ? ` @${r.ancestor_lsn}` : ''
    const node = {
      label: `${out.bold(r.branch ?? '(unnamed)')}${at}  ${out.dim(r.timeline_id)}  last ${r.last_record_lsn}`,
      children: [] as TreeNode[],
    }
    nodes.set(r.timeline_id, node)
    const parent = r.ancestor_timeline_id ? nodes.get(r.ancestor_timeline_id) : undefined
    ;(parent ? parent.children : roots).push(node)
  }
  return out.tree(roots)
}
