import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { startEndpointSteps } from '../../control/endpoints.js'

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
    json: Flags.boolean({ summary: 'print the endpoint as JSON' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(PgStart)
    const { steps, endpoint, alreadyRunning } = await startEndpointSteps(this.repoDir(flags), args.name, {
      tenantId: flags['tenant-id'],
    })
    await this.runSteps(steps, { quiet: flags.json })
    const e = endpoint()
    if (flags.json) return this.printJson({ ...e, already_running: alreadyRunning })
    process.stdout.write(
      `${alreadyRunning ? 'already running' : 'started'}: endpoint ${e.name} on branch ${e.branch}${e.lsn ? ` at ${e.lsn} (read-only)` : ''}\n` +
        `connect with: psql ${e.connstr}\n`,
    )
  }
}
