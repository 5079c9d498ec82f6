import { ClusterCommand } from '../../cli/cluster-command.js'
import { safekeeperIdArg } from '../../cli/flags.js'
import { renderDied, renderServerState } from '../../cli/render.js'
import { type SafekeeperStatus, safekeeperIds, safekeeperStatus } from '../../control/safekeeper-process.js'

export default class SafekeeperStatusCommand extends ClusterCommand {
  static override summary = 'show whether a safekeeper, or every one, runs and answers'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 3 --json',
  ]
  static override args = { id: safekeeperIdArg }

  async run(): Promise<SafekeeperStatus[]> {
    const { args, flags } = await this.parse(SafekeeperStatusCommand)
    const repoDir = this.repoDir(flags)
    const all = await Promise.all(safekeeperIds(repoDir, args.id).map((id) => safekeeperStatus(repoDir, id)))
    this.print(
      all.length === 0
        ? 'the cluster has no safekeepers'
        : all
            .flatMap((s) => [`safekeeper ${s.id} ${renderServerState(this.out, s)}`, ...renderDied(s)])
            .join('\n'),
    )
    return all
  }
}
