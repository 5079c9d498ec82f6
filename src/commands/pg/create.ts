import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { createEndpoint, type EndpointRow, parseSettings } from '../../control/endpoints.js'

export default class PgCreate extends ClusterCommand {
  static override aliases = ['endpoint:create']
  static override summary = 'create a compute endpoint on a branch (started with `pg start`)'
  static override description =
    'With --lsn the endpoint is read-only and shows the branch as it was at that LSN (time travel).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> main --name past --lsn 0/16B3748',
    '<%= config.bin %> <%= command.id %> dev --port 55500 -c work_mem=64MB',
  ]
  static override args = {
    branch: Args.string({ description: 'branch the compute runs on', required: true }),
  }
  static override flags = {
    name: Flags.string({ summary: 'endpoint name (default: the branch name)' }),
    port: Flags.integer({ summary: 'port of the compute (default: the next free one from 55432)' }),
    lsn: Flags.string({ summary: 'a read-only endpoint at this LSN, X/X' }),
    config: Flags.string({
      char: 'c',
      summary: 'a postgresql.conf setting as key=value (repeatable)',
      multiple: true,
    }),
    'tenant-id': tenantIdFlag,
  }

  async run(): Promise<EndpointRow> {
    const { args, flags } = await this.parse(PgCreate)
    const repoDir = this.repoDir(flags)
    const e = await this.locked(repoDir, () =>
      createEndpoint(repoDir, {
        branch: args.branch,
        name: flags.name,
        port: flags.port,
        lsn: flags.lsn,
        settings: parseSettings(flags.config ?? []),
        tenantId: flags['tenant-id'],
      }),
    )
    this.print(
      `endpoint ${e.name} created on branch ${e.branch}${e.lsn ? ` at ${e.lsn} (read-only)` : ''}, port ${e.port}`,
    )
    return e
  }
}
