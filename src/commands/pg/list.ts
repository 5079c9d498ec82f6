import { ClusterCommand } from '../../cli/cluster-command.js'
import { renderEndpoints } from '../../cli/render.js'
import { type EndpointRow, listEndpoints } from '../../control/endpoints.js'

export default class PgList extends ClusterCommand {
  static override aliases = ['endpoint:list']
  static override summary = 'list compute endpoints'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<EndpointRow[]> {
    const { flags } = await this.parse(PgList)
    const rows = await listEndpoints(this.repoDir(flags))
    this.print(
      rows.length === 0
        ? 'no endpoints; `zenith pg create <branch>` makes one'
        : renderEndpoints(this.out, rows, { ids: true }),
    )
    return rows
  }
}
