import { ClusterCommand } from '../../cli/cluster-command.js'
import { safekeeperIdArg } from '../../cli/flags.js'
import { safekeeperLogFile } from '../../control/layout.js'
import { safekeeperIds, startSafekeeper } from '../../control/safekeeper-process.js'

export default class SafekeeperStart extends ClusterCommand {
  static override summary = 'start a safekeeper, or every one, in the background'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 2 --json',
  ]
  static override args = { id: safekeeperIdArg }

  async run(): Promise<{ id: number; pid: number; already_running: boolean; log_file: string }[]> {
    const { args, flags } = await this.parse(SafekeeperStart)
    const repoDir = this.repoDir(flags)
    return this.locked(repoDir, async () => {
      const ids = safekeeperIds(repoDir, args.id)
      if (ids.length === 0) this.print('the cluster has no safekeepers')
      const started = []
      for (const id of ids) {
        const { pid, alreadyRunning } = await startSafekeeper(repoDir, id)
        const logFile = safekeeperLogFile(repoDir, id)
        this.print(
          `safekeeper ${id} ${alreadyRunning ? 'is already running' : 'started'} (pid ${pid}); log: ${logFile}`,
        )
        started.push({ id, pid, already_running: alreadyRunning, log_file: logFile })
      }
      return started
    })
  }
}
