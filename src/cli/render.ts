/**
 * Renderings that more than one command shows: endpoints, the state of a server (the pageserver, a
 * safekeeper), the safekeepers with their timelines, the branch tree.
 */
import type { EndpointRow } from '../control/endpoints.js'
import type { PageserverStatus } from '../control/pageserver-process.js'
import type { SafekeeperRow, SafekeeperStatus } from '../control/safekeeper-process.js'
import type { ServerState } from '../control/server-process.js'
import type { BranchRow } from '../control/tenants.js'
import type { Output, TreeNode } from './output.js'

export function renderEndpoints(
  out: Output,
  rows: readonly EndpointRow[],
  opts: { ids?: boolean } = {},
): string {
  const ids = opts.ids === true
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
      receiver(e),
      e.connstr,
    ]),
  )
  // A broken receiver needs someone to act: say why under the table, where it cannot be missed.
  const broken = rows.flatMap((e) =>
    e.walreceiver?.status === 'broken'
      ? [out.bad(`endpoint ${e.name}: the pageserver's WAL receiver is broken: ${e.walreceiver.error}`)]
      : [],
  )
  return [table, ...(broken.length > 0 ? ['', ...broken] : [])].join('\n')
}

/** `running (pid N), http …, pg …`, with `, not answering` when its HTTP API does not. */
export function renderServerState(out: Output, p: PageserverStatus | SafekeeperStatus): string {
  const state = p.running ? out.good(`running (pid ${p.pid})`) : out.bad(p.state)
  return `${state}, http ${p.http}, pg ${p.pg}${p.running && !p.reachable ? out.warn(', not answering') : ''}`
}

/** For a server that died: where its log is and how it ends, one line each; else none. */
export function renderDied(p: ServerState): string[] {
  if (p.state !== 'died') return []
  const tail = p.last_log_lines ?? []
  const head = tail.length > 0 ? `its log ${p.log_file} ends:` : `its log ${p.log_file} is empty`
  return [head, ...tail.map((l) => `  ${l}`)]
}

/** A table of the safekeepers, then one of the timelines of those that answered. */
export function renderSafekeepers(out: Output, rows: readonly SafekeeperRow[]): string {
  const safekeepers = out.table(
    ['ID', 'STATUS', 'PID', 'PG PORT', 'HTTP PORT', 'TIMELINES'],
    rows.map((r) => [
      String(r.id),
      r.status === 'running' ? out.good(r.status) : r.status === 'died' ? out.bad(r.status) : r.status,
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
    ]),
  )
  if (timelines.length === 0) return safekeepers
  return `${safekeepers}\n\n${out.table(['SAFEKEEPER', 'TENANT', 'TIMELINE', 'TERM', 'FLUSH LSN', 'COMMIT LSN'], timelines)}`
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
