import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { stopPageserver } from '../../control/pageserver-process.js'

export default class PageserverStop extends ClusterCommand {
  static override summary = 'stop the pageserver (it flushes what it has ingested first)'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --immediate',
  ]
  static override flags = { immediate: Flags.boolean({ summary: 'kill it without flushing' }) }

  async run(): Promise<{ was_running: boolean }> {
    const { flags } = await this.parse(PageserverStop)
    const repoDir = this.repoDir(flags)
    const { wasRunning } = await this.locked(repoDir, () =>
      stopPageserver(repoDir, { immediate: flags.immediate }),
    )
    this.print(wasRunning ? 'pageserver stopped' : 'the pageserver was not running')
    return { was_running: wasRunning }
  }
}
