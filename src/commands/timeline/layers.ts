import { ClusterCommand } from '../../cli/cluster-command.js'
import { branchArg, tenantIdFlag } from '../../cli/flags.js'
import { renderBranchLayers } from '../../cli/layers-render.js'
import { type BranchLayers, branchLayers } from '../../control/layers.js'

export default class TimelineLayers extends ClusterCommand {
  static override summary =
    "list a branch's layers newest first: kind, keys, LSNs, size, with totals per kind"
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> dev --json',
  ]
  static override args = { branch: branchArg }
  static override flags = {
    'tenant-id': tenantIdFlag,
  }

  async run(): Promise<BranchLayers> {
    const { args, flags } = await this.parse(TimelineLayers)
    const m = await branchLayers(this.repoDir(flags), args.branch, { tenantId: flags['tenant-id'] })
    this.print(renderBranchLayers(this.out, m))
    return m
  }
}
