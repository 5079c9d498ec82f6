import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { type EndpointRow, startEndpointSteps } from '../../control/endpoints.js'

export default class PgStart extends ClusterCommand {
  static override aliases = ['endpoint:start']
  static override summary = 'start a compute endpoint (creating one on the branch of that name if needed)'
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    'psql postgresql://postgres@127.0.0.1:55432/postgres',
  ]
  static override args = { name: Args.string({ description: 'endpoint (or branch) name', required: true }) }
  static override flags = {
    'tenant-id': Flags.string({
      summary: 'the tenant, when creating an endpoint (default: the default tenant)',
    }),
  }

  async run(): Promise<EndpointRow & { already_running: boolean }> {
    const { args, flags } = await this.parse(PgStart)
    const repoDir = this.repoDir(flags)
    return this.locked(repoDir, async () => {
      const { steps, endpoint, alreadyRunning } = await startEndpointSteps(repoDir, args.name, {
        tenantId: flags['tenant-id'],
      })
      await this.runSteps(steps)
      const e = endpoint()
      this.print(
        `${alreadyRunning ? 'already running' : 'started'}: endpoint ${e.name} on branch ${e.branch}${e.lsn ? ` at ${e.lsn} (read-only)` : ''}\n` +
          `connect with: psql ${e.connstr}`,
      )
      return { ...e, already_running: alreadyRunning }
    })
  }
}
