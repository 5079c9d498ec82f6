import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverIdArg } from '../../cli/flags.js'
import { renderDied, renderRemoteStorage, renderServerState } from '../../cli/render.js'
import { type PageserverStatus, pageserverName, pageserverStatus } from '../../control/pageserver-process.js'
import { loadClusterConfig, pageserverOf } from '../../control/repo-config.js'

export default class PageserverStatusCommand extends ClusterCommand {
  static override summary = 'show whether a pageserver runs and answers'
  static override args = { id: pageserverIdArg }
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 2 --json',
  ]

  async run(): Promise<PageserverStatus> {
    const { args, flags } = await this.parse(PageserverStatusCommand)
    const repoDir = this.repoDir(flags)
    const s = await pageserverStatus(repoDir, pageserverOf(loadClusterConfig(repoDir), args.id))
    this.print(
      [
        `${pageserverName(s.id)} ${renderServerState(this.out, s)}`,
        ...renderDied(s),
        `remote storage ${renderRemoteStorage(s.remote_storage)}`,
      ].join('\n'),
    )
    return s
  }
}
