import { ClusterCommand } from '../../cli/cluster-command.js'
import { branchArg, tenantIdFlag } from '../../cli/flags.js'
import { renderTimeline } from '../../cli/render.js'
import { type BranchDetail, showBranch } from '../../control/tenants.js'

export default class TimelineShow extends ClusterCommand {
  static override summary =
    "show a branch's timeline: LSNs, sizes, its WAL receiver, and what the safekeepers hold of it"
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> dev --json',
  ]
  static override args = { branch: branchArg }
  static override flags = {
    'tenant-id': tenantIdFlag,
  }

  async run(): Promise<BranchDetail> {
    const { args, flags } = await this.parse(TimelineShow)
    const t = await showBranch(this.repoDir(flags), args.branch, { tenantId: flags['tenant-id'] })
    this.print(renderTimeline(this.out, t))
    return t
  }
}
