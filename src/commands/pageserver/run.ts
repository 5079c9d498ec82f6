import { ClusterCommand } from '../../cli/cluster-command.js'
import { runPageserver } from '../../control/pageserver-process.js'

export default class PageserverRun extends ClusterCommand {
  static override summary =
    'run the pageserver in the foreground, logging to stdout (what `pageserver start` launches)'
  static override examples = ['<%= config.bin %> <%= command.id %> --repo-dir .zenith']

  async run(): Promise<void> {
    const { flags } = await this.parse(PageserverRun)
    const running = await runPageserver(this.repoDir(flags), { logToStdout: true })
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await running.stop()
  }
}
