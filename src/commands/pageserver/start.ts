import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverIdArg } from '../../cli/flags.js'
import { pageserverLogFile } from '../../control/layout.js'
import { pageserverName, startPageserver } from '../../control/pageserver-process.js'
import { ensurePageserver } from '../../control/pageservers.js'

export default class PageserverStart extends ClusterCommand {
  static override summary = 'start a pageserver in the background; a new id adds a pageserver to the cluster'
  static override description =
    "Pageserver N (N > 1) is made on its first start: its pageserver.toml is the first one's, with both " +
    'ports moved up by N-1, in the directory pageserver_N of the repo dir. It serves no tenant until one ' +
    'is attached or migrated to it (`zenith tenant migrate --to N`).'
  static override args = { id: pageserverIdArg }
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 2',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<{
    id: number
    pid: number
    already_running: boolean
    added: boolean
    log_file: string
  }> {
    const { args, flags } = await this.parse(PageserverStart)
    const repoDir = this.repoDir(flags)
    const { id } = args
    const { added, started } = await this.locked(repoDir, async () => {
      const added = ensurePageserver(repoDir, id)
      return { added, started: await startPageserver(repoDir, id) }
    })
    const { pid, alreadyRunning } = started
    const logFile = pageserverLogFile(repoDir, id)
    const name = pageserverName(id)
    this.print(
      `${alreadyRunning ? `the ${name} is already running` : `${name} ${added ? 'added and ' : ''}started`} (pid ${pid}); log: ${logFile}`,
    )
    return { id, pid, already_running: alreadyRunning, added, log_file: logFile }
  }
}
