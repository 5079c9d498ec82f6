import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { stopSteps } from '../control/cluster.js'

export default class Stop extends ClusterCommand {
  static override summary =
    'stop the computes, then the pageserver, then the safekeepers and the storage controller, and wait for them'
  static override description =
    'Computes stop with `pg_ctl stop -m fast` and the pageserver ingests their last WAL before it stops and flushes; safekeepers write their control files. With --immediate, computes stop with -m immediate and the pageserver and safekeepers are killed; all recover on the next start.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --immediate',
  ]
  static override flags = {
    immediate: Flags.boolean({ summary: 'stop without waiting for a clean shutdown' }),
  }

  async run(): Promise<{ steps: string[] }> {
    const { flags } = await this.parse(Stop)
    const repoDir = this.repoDir(flags)
    const steps = await this.locked(repoDir, async () =>
      this.runSteps(await stopSteps(repoDir, { immediate: flags.immediate })),
    )
    return { steps }
  }
}
