import { ClusterCommand } from '../../cli/cluster-command.js'
import { renderSafekeepers } from '../../cli/render.js'
import { listSafekeepers, type SafekeeperRow } from '../../control/safekeeper-view.js'

export default class SafekeeperList extends ClusterCommand {
  static override summary =
    'list the safekeepers with their ports and the timelines they hold, with their lag behind the compute'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<SafekeeperRow[]> {
    const { flags } = await this.parse(SafekeeperList)
    const rows = await listSafekeepers(this.repoDir(flags))
    this.print(rows.length === 0 ? 'the cluster has no safekeepers' : renderSafekeepers(this.out, rows))
    return rows
  }
}
