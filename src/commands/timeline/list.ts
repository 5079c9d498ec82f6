import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { type BranchRow, listBranches } from '../../control/tenants.js'

/** Branches as a tree, each child under its ancestor with the LSN it branched at. */
export function renderTree(rows: readonly BranchRow[]): string {
  const depth = new Map<string, number>()
  const lines: string[] = []
  for (const r of rows) {
    const d = r.ancestor_timeline_id ? (depth.get(r.ancestor_timeline_id) ?? 0) + 1 : 0
    depth.set(r.timeline_id, d)
    const name = chalk.bold(r.branch ?? '(unnamed)')
    const at = r.ancestor_lsn ? ` @${r.ancestor_lsn}` : ''
    const indent = d === 0 ? '' : `${'   '.repeat(d - 1)}┗━ `
    lines.push(`${indent}${name}${at}  ${chalk.dim(r.timeline_id)}  last ${r.last_record_lsn}`)
  }
  return lines.join('\n')
}

export default class TimelineList extends ClusterCommand {
  static override summary = "list a tenant's branches as a tree, with their LSNs"
  static override flags = {
    'tenant-id': Flags.string({ summary: 'the tenant (default: the default tenant)' }),
    json: Flags.boolean({ summary: 'print the timelines as JSON' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(TimelineList)
    const rows = await listBranches(this.repoDir(flags), { tenantId: flags['tenant-id'] })
    if (flags.json) return this.printJson(rows)
    process.stdout.write(`${renderTree(rows)}\n`)
  }
}
