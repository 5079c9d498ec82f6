import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { stopEndpoint } from '../../control/endpoints.js'

export default class PgStop extends ClusterCommand {
  static override aliases = ['endpoint:stop']
  static override summary = 'stop a compute endpoint once the pageserver has all of its WAL'
  static override description =
    'With --destroy the endpoint and its datadir are removed after the pageserver has made the last WAL durable; `pg start <branch>` rebuilds a compute from the pageserver.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> main --destroy',
    '<%= config.bin %> <%= command.id %> past --immediate',
  ]
  static override args = { name: Args.string({ description: 'endpoint name', required: true }) }
  static override flags = {
    destroy: Flags.boolean({ summary: 'remove the endpoint and its datadir' }),
    immediate: Flags.boolean({ summary: 'pg_ctl stop -m immediate: no shutdown checkpoint, no waiting' }),
  }

  async run(): Promise<{ name: string; was_running: boolean; lsn: string | null; destroyed: boolean }> {
    const { args, flags } = await this.parse(PgStop)
    const repoDir = this.repoDir(flags)
    const r = await this.locked(repoDir, () =>
      stopEndpoint(repoDir, args.name, {
        destroy: flags.destroy,
        mode: flags.immediate ? 'immediate' : 'fast',
      }),
    )
    const what = r.wasRunning ? `stopped${r.lsn ? ` at ${r.lsn}` : ''}` : 'was not running'
    this.print(`endpoint ${args.name} ${what}${r.destroyed ? ', destroyed' : ''}`)
    return { name: args.name, was_running: r.wasRunning, lsn: r.lsn ?? null, destroyed: r.destroyed }
  }
}
