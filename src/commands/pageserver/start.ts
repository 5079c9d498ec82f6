import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverLogFile } from '../../control/layout.js'
import { startPageserver } from '../../control/pageserver-process.js'

export default class PageserverStart extends ClusterCommand {
  static override summary = 'start the pageserver in the background'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<{ pid: number; already_running: boolean; log_file: string }> {
    const { flags } = await this.parse(PageserverStart)
    const repoDir = this.repoDir(flags)
    const { pid, alreadyRunning } = await this.locked(repoDir, () => startPageserver(repoDir))
    const logFile = pageserverLogFile(repoDir)
    this.print(
      `${alreadyRunning ? 'the pageserver is already running' : 'pageserver started'} (pid ${pid}); log: ${logFile}`,
    )
    return { pid, already_running: alreadyRunning, log_file: logFile }
  }
}
