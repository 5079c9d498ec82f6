import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { ClusterCommand, table } from '../../cli/cluster-command.js'
import { listEndpoints } from '../../control/endpoints.js'

export default class PgList extends ClusterCommand {
  static override aliases = ['endpoint:list']
  static override summary = 'list compute endpoints'
  static override flags = { json: Flags.boolean({ summary: 'print the endpoints as JSON' }) }

  async run(): Promise<void> {
    const { flags } = await this.parse(PgList)
    const rows = await listEndpoints(this.repoDir(flags))
    if (flags.json) return this.printJson(rows)
    process.stdout.write(
      `${table(
        ['ENDPOINT', 'BRANCH', 'TENANT', 'TIMELINE', 'PORT', 'STATUS', 'LSN', 'CONNSTR'],
        rows.map((e) => [
          e.name,
          e.branch,
          e.tenant_id,
          e.timeline_id,
          String(e.port),
          e.status === 'running' ? chalk.green(e.status) : e.status,
          e.lsn ?? 'latest',
          e.connstr,
        ]),
      )}\n`,
    )
  }
}
