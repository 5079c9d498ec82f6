import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { renderBranchTree } from '../../cli/render.js'
import { type BranchRow, listBranches } from '../../control/tenants.js'

export default class TimelineList extends ClusterCommand {
  static override summary = "list a tenant's branches as a tree, with their LSNs"
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]
  static override flags = {
    'tenant-id': tenantIdFlag,
  }

  async run(): Promise<BranchRow[]> {
    const { flags } = await this.parse(TimelineList)
    const rows = await listBranches(this.repoDir(flags), { tenantId: flags['tenant-id'] })
    this.print(renderBranchTree(this.out, rows))
    return rows
  }
}
