import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { stopPageserver } from '../../control/pageserver-process.js'

export default class PageserverStop extends ClusterCommand {
  static override summary = 'stop the pageserver (it flushes what it has ingested first)'
  static override flags = { immediate: Flags.boolean({ summary: 'kill it without flushing' }) }

  async run(): Promise<void> {
    const { flags } = await this.parse(PageserverStop)
    const { wasRunning } = await stopPageserver(this.repoDir(flags), { immediate: flags.immediate })
    process.stdout.write(wasRunning ? 'pageserver stopped\n' : 'the pageserver was not running\n')
  }
}
