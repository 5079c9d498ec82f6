import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { safekeeperIdArg } from '../../cli/flags.js'
import { safekeeperLogFile } from '../../control/layout.js'
import { safekeeperIds, startSafekeeper, stopSafekeeper } from '../../control/safekeeper-process.js'

export default class SafekeeperRestart extends ClusterCommand {
  static override summary = 'stop a safekeeper, or every one, and start it again'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 3 --immediate',
  ]
  static override args = { id: safekeeperIdArg }
  static override flags = { immediate: Flags.boolean({ summary: 'kill it (SIGKILL) instead of SIGTERM' }) }

  async run(): Promise<{ id: number; was_running: boolean; pid: number; log_file: string }[]> {
    const { args, flags } = await this.parse(SafekeeperRestart)
    const repoDir = this.repoDir(flags)
    return this.locked(repoDir, async () => {
      const ids = safekeeperIds(repoDir, args.id)
      if (ids.length === 0) this.print('the cluster has no safekeepers')
      const restarted = []
      // One at a time, so that a quorum of the others stays up throughout.
      for (const id of ids) {
        const { wasRunning } = await stopSafekeeper(repoDir, id, { immediate: flags.immediate })
        const { pid } = await startSafekeeper(repoDir, id)
        const logFile = safekeeperLogFile(repoDir, id)
        this.print(`safekeeper ${id} ${wasRunning ? 'restarted' : 'started'} (pid ${pid}); log: ${logFile}`)
        restarted.push({ id, was_running: wasRunning, pid, log_file: logFile })
      }
      return restarted
    })
  }
}
