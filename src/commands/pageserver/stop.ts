import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { pageserverIdArg } from '../../cli/flags.js'
import { pageserverName, stopPageserver } from '../../control/pageserver-process.js'
import { loadClusterConfig, pageserverOf } from '../../control/repo-config.js'

export default class PageserverStop extends ClusterCommand {
  static override summary = 'stop a pageserver (it flushes what it has ingested first)'
  static override args = { id: pageserverIdArg }
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 2',
    '<%= config.bin %> <%= command.id %> --immediate',
  ]
  static override flags = { immediate: Flags.boolean({ summary: 'kill it without flushing' }) }

  async run(): Promise<{ id: number; was_running: boolean }> {
    const { args, flags } = await this.parse(PageserverStop)
    const repoDir = this.repoDir(flags)
    const id = pageserverOf(loadClusterConfig(repoDir), args.id)
    const { wasRunning } = await this.locked(repoDir, () =>
      stopPageserver(repoDir, id, { immediate: flags.immediate }),
    )
    const name = pageserverName(id)
    this.print(wasRunning ? `${name} stopped` : `the ${name} was not running`)
    return { id, was_running: wasRunning }
  }
}
