import { Args } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { runSafekeeper, safekeeperIds } from '../../control/safekeeper-process.js'

export default class SafekeeperRun extends ClusterCommand {
  static override hidden = true
  static override summary =
    'run a safekeeper in the foreground, logging to stdout (what `safekeeper start` launches)'
  static override examples = ['<%= config.bin %> <%= command.id %> 1 --repo-dir .zenith']
  static override args = { id: Args.integer({ description: 'the safekeeper id', min: 1, required: true }) }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SafekeeperRun)
    const repoDir = this.repoDir(flags)
    const [id] = safekeeperIds(repoDir, args.id)
    const running = await runSafekeeper(repoDir, id, { logToStdout: true })
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await running.stop()
  }
}
