import { ClusterCommand } from '../../cli/cluster-command.js'
import { renderDied, renderRemoteStorage, renderServerState } from '../../cli/render.js'
import { type PageserverStatus, pageserverStatus } from '../../control/pageserver-process.js'

export default class PageserverStatusCommand extends ClusterCommand {
  static override summary = 'show whether the pageserver runs and answers'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<PageserverStatus> {
    const { flags } = await this.parse(PageserverStatusCommand)
    const s = await pageserverStatus(this.repoDir(flags))
    this.print(
      [
        `pageserver ${renderServerState(this.out, s)}`,
        ...renderDied(s),
        `remote storage ${renderRemoteStorage(s.remote_storage)}`,
      ].join('\n'),
    )
    return s
  }
}
