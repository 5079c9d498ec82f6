/** Tenants and branches of the local cluster: the pageservers' API plus the repo config's branch names. */
import { generateId, parseId } from '../lib/ids.js'
import type { TenantConfigFields, TenantConfigInfo, TimelineInfo } from '../pageserver/api-types.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { writerWalPositions } from './computes.js'
import { ServerUnreachableError } from './http-client.js'
import { pageserverClientOf } from './layout.js'
import { type LadderRung, timelineLadder } from './lsn-ladder.js'
import {
  branchOfTimeline,
  checkName,
  DEFAULT_BRANCH,
  loadClusterConfig,
  RepoConfigError,
  saveClusterConfig,
  tenantOf,
  timelineOfBranch,
} from './repo-config.js'
import { type TimelineOnSafekeepers, timelineOnSafekeepers } from './safekeeper-view.js'
import { storageControllerClientOf } from './storage-controller-process.js'
import { tenantPageserver, tenantPageserverClient, tenantPageserverId } from './tenant-placement.js'

export interface TenantRow {
  tenant_id: string
  /** The pageserver that holds it. */
  pageserver_id: number
  is_default: boolean
  branches: number
  /** null when its pageserver does not answer. */
  current_physical_size: number | null
}

/** A tenant with its first branch, `main`, made by initdb on the pageserver. */
export async function createTenant(
  repoDir: string,
  opts: { tenantId?: string; setDefault?: boolean; config?: TenantConfigFields } = {},
): Promise<{ tenantId: string; timelineId: string; isDefault: boolean; lastRecordLsn: string }> {
  const c = loadClusterConfig(repoDir)
  const tenantId = parseId(opts.tenantId ?? generateId(), 'tenant')
  const { client: ps, config } = tenantPageserver(repoDir, tenantId)
  // The generation comes from the storage controller first: a pageserver must never make one up.
  const cp = config.controlPlane
  const generation =
    cp === null
      ? undefined
      : (await storageControllerClientOf(repoDir).attach(tenantId, cp.nodeId)).generation
  await ps.createTenant(tenantId, { config: opts.config ?? {}, generation })
  const timelineId = generateId()
  const tl = await ps.createTimeline(tenantId, { new_timeline_id: timelineId })
  c.branches[tenantId] = { [DEFAULT_BRANCH]: timelineId }
  const isDefault = opts.setDefault === true || c.defaultTenantId === null
  if (isDefault) c.defaultTenantId = tenantId
  saveClusterConfig(repoDir, c)
  return { tenantId, timelineId, isDefault, lastRecordLsn: tl.last_record_lsn }
}

/**
 * Every tenant of every pageserver. A pageserver that does not answer leaves its tenants in the list with
 * what the repo config knows of them (no size); only when none answers is the listing an error.
 */
export async function listTenants(repoDir: string): Promise<TenantRow[]> {
  const c = loadClusterConfig(repoDir)
  const answers = await Promise.allSettled(
    c.pageservers.map(async (id) => ({ id, tenants: await pageserverClientOf(repoDir, id).tenants() })),
  )
  const up = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []))
  const down = answers.flatMap((a, i) =>
    a.status === 'rejected' ? [{ id: c.pageservers[i], err: a.reason }] : [],
  )
  if (up.length === 0) throw down[0].err
  for (const d of down) if (!(d.err instanceof ServerUnreachableError)) throw d.err
  const row = (tenantId: string, pageserverId: number, size: number | null): TenantRow => ({
    tenant_id: tenantId,
    pageserver_id: pageserverId,
    is_default: tenantId === c.defaultTenantId,
    branches: Object.keys(c.branches[tenantId] ?? {}).length,
    current_physical_size: size,
  })
  const rows = up.flatMap(({ id, tenants }) => tenants.map((t) => row(t.id, id, t.current_physical_size)))
  const unanswered = new Set(down.map((d) => d.id))
  for (const tenantId of Object.keys(c.branches)) {
    const id = tenantPageserverId(repoDir, tenantId)
    if (unanswered.has(id) && !rows.some((r) => r.tenant_id === tenantId)) rows.push(row(tenantId, id, null))
  }
  return rows
}

export async function tenantConfig(
  repoDir: string,
  opts: { tenantId?: string; patch?: TenantConfigFields } = {},
): Promise<TenantConfigInfo & { tenant_id: string }> {
  const tenantId = tenantOf(loadClusterConfig(repoDir), opts.tenantId)
  const ps = tenantPageserverClient(repoDir, tenantId)
  const info =
    opts.patch && Object.keys(opts.patch).length > 0
      ? await ps.patchTenantConfig(tenantId, opts.patch)
      : await ps.tenantConfig(tenantId)
  return { tenant_id: tenantId, ...info }
}

export interface BranchRow extends TimelineInfo {
  branch: string | null
  ancestor_branch: string | null
}

export async function createBranch(
  repoDir: string,
  opts: { branchName: string; ancestorBranch?: string; ancestorStartLsn?: string; tenantId?: string },
): Promise<BranchRow> {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const name = checkName(opts.branchName, 'branch')
  if (c.branches[tenantId]?.[name])
    throw new RepoConfigError(`branch "${name}" already exists in tenant ${tenantId}`, { kind: 'conflict' })
  const ancestorBranch = opts.ancestorBranch ?? DEFAULT_BRANCH
  const ancestor = timelineOfBranch(c, tenantId, ancestorBranch)
  const lsn = opts.ancestorStartLsn === undefined ? undefined : formatLsn(parseLsn(opts.ancestorStartLsn))
  const timelineId = generateId()
  const info = await tenantPageserverClient(repoDir, tenantId).createTimeline(tenantId, {
    new_timeline_id: timelineId,
    ancestor_timeline_id: ancestor,
    ...(lsn === undefined ? {} : { ancestor_start_lsn: lsn }),
  })
  const fresh = loadClusterConfig(repoDir)
  fresh.branches[tenantId] = { ...fresh.branches[tenantId], [name]: timelineId }
  saveClusterConfig(repoDir, fresh)
  return { ...info, branch: name, ancestor_branch: ancestorBranch }
}

/** Every timeline of the tenant with its branch name, ancestors before their children. */
export async function listBranches(repoDir: string, opts: { tenantId?: string } = {}): Promise<BranchRow[]> {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const timelines = await tenantPageserverClient(repoDir, tenantId).timelines(tenantId)
  const rows = timelines.map((t) => ({
    ...t,
    branch: branchOfTimeline(c, tenantId, t.timeline_id),
    ancestor_branch: t.ancestor_timeline_id ? branchOfTimeline(c, tenantId, t.ancestor_timeline_id) : null,
  }))
  const byParent = new Map<string | null, BranchRow[]>()
  for (const r of rows) {
    const k = r.ancestor_timeline_id
    byParent.set(k, [...(byParent.get(k) ?? []), r])
  }
  const out: BranchRow[] = []
  const visit = (parent: string | null) => {
    const kids = (byParent.get(parent) ?? []).sort(
      (a, b) =>
        parseLsn(a.ancestor_lsn ?? '0/0') - parseLsn(b.ancestor_lsn ?? '0/0') ||
        (a.branch ?? '').localeCompare(b.branch ?? ''),
    )
    for (const k of kids) {
      out.push(k)
      visit(k.timeline_id)
    }
  }
  visit(null)
  return out
}

/**
 * A branch as the pageserver has it, beside that what the safekeepers hold of it, and the LSN ladder from
 * its running writer (if one runs) down to the pageserver's durable state.
 */
export interface BranchDetail extends BranchRow, TimelineOnSafekeepers {
  /** The pageserver that holds the tenant, whose figures these are. */
  pageserver_id: number
  ladder: LadderRung[]
}

export async function showBranch(
  repoDir: string,
  branch: string,
  opts: { tenantId?: string } = {},
): Promise<BranchDetail> {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const timelineId = timelineOfBranch(c, tenantId, branch)
  const ps = tenantPageserver(repoDir, tenantId)
  const [info, onSafekeepers] = await Promise.all([
    ps.client.timeline(tenantId, timelineId),
    timelineOnSafekeepers(repoDir, tenantId, timelineId),
  ])
  const writer = (await writerWalPositions(repoDir, c, { timelineId })).get(timelineId) ?? null
  return {
    ...info,
    pageserver_id: ps.id,
    branch,
    ancestor_branch: info.ancestor_timeline_id
      ? branchOfTimeline(c, tenantId, info.ancestor_timeline_id)
      : null,
    ...onSafekeepers,
    ladder: timelineLadder(writer, onSafekeepers, info),
  }
}
