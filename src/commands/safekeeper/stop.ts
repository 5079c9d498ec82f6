import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { safekeeperIdArg } from '../../cli/flags.js'
import { safekeeperIds, stopSafekeeper } from '../../control/safekeeper-process.js'

export default class SafekeeperStop extends ClusterCommand {
  static override summary = 'stop a safekeeper, or every one (each writes its control files first)'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 2 --immediate',
  ]
  static override args = { id: safekeeperIdArg }
  static override flags = { immediate: Flags.boolean({ summary: 'kill it (SIGKILL)' }) }

  async run(): Promise<{ id: number; was_running: boolean }[]> {
    const { args, flags } = await this.parse(SafekeeperStop)
    const repoDir = this.repoDir(flags)
    return this.locked(repoDir, async () => {
      const ids = safekeeperIds(repoDir, args.id)
      if (ids.length === 0) this.print('the cluster has no safekeepers')
      const stopped = []
      for (const id of ids) {
        const { wasRunning } = await stopSafekeeper(repoDir, id, { immediate: flags.immediate })
        this.print(wasRunning ? `safekeeper ${id} stopped` : `safekeeper ${id} was not running`)
        stopped.push({ id, was_running: wasRunning })
      }
      return stopped
    })
  }
}
