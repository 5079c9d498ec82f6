import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverIdArg } from '../../cli/flags.js'
import { runPageserver } from '../../control/pageserver-process.js'
import { loadClusterConfig, pageserverOf } from '../../control/repo-config.js'

export default class PageserverRun extends ClusterCommand {
  static override summary =
    'run a pageserver in the foreground, logging to stdout (what `pageserver start` launches)'
  static override args = { id: pageserverIdArg }
  static override examples = [
    '<%= config.bin %> <%= command.id %> --repo-dir .zenith',
    '<%= config.bin %> <%= command.id %> 2',
  ]

  async run(): Promise<void> {
    const { args, flags } = await this.parse(PageserverRun)
    const repoDir = this.repoDir(flags)
    const id = pageserverOf(loadClusterConfig(repoDir), args.id)
    const running = await runPageserver(repoDir, id, { logToStdout: true })
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await running.stop()
  }
}
