import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { stopSteps } from '../control/cluster.js'

export default class Stop extends ClusterCommand {
  static override summary = 'stop the computes, then the pageserver, and wait for them'
  static override description =
    'Computes stop with `pg_ctl stop -m fast` and the pageserver ingests their last WAL before it stops and flushes. With --immediate, computes stop with -m immediate and the pageserver is killed; both recover on the next start.'
  static override flags = {
    immediate: Flags.boolean({ summary: 'stop without waiting for a clean shutdown' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Stop)
    await this.runSteps(await stopSteps(this.repoDir(flags), { immediate: flags.immediate }))
  }
}
