import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverLogFile } from '../../control/layout.js'
import { startPageserver } from '../../control/pageserver-process.js'

export default class PageserverStart extends ClusterCommand {
  static override summary = 'start the pageserver in the background'

  async run(): Promise<void> {
    const { flags } = await this.parse(PageserverStart)
    const repoDir = this.repoDir(flags)
    const { pid, alreadyRunning } = await startPageserver(repoDir)
    process.stdout.write(
      `${alreadyRunning ? 'the pageserver is already running' : 'pageserver started'} (pid ${pid}); log: ${pageserverLogFile(repoDir)}\n`,
    )
  }
}
