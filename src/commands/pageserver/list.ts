import { ClusterCommand } from '../../cli/cluster-command.js'
import { renderPageservers } from '../../cli/render.js'
import { listPageservers, type PageserverRow } from '../../control/pageservers.js'

export default class PageserverList extends ClusterCommand {
  static override summary = 'list the pageservers with their state, ports and how many tenants each holds'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<PageserverRow[]> {
    const { flags } = await this.parse(PageserverList)
    const rows = await listPageservers(this.repoDir(flags))
    this.print(renderPageservers(this.out, rows))
    return rows
  }
}
