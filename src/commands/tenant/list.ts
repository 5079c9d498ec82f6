import { Flags } from '@oclif/core'
import { ClusterCommand, table } from '../../cli/cluster-command.js'
import { listTenants } from '../../control/tenants.js'

export default class TenantList extends ClusterCommand {
  static override summary = 'list the tenants of the pageserver'
  static override flags = { json: Flags.boolean({ summary: 'print the tenants as JSON' }) }

  async run(): Promise<void> {
    const { flags } = await this.parse(TenantList)
    const rows = await listTenants(this.repoDir(flags))
    if (flags.json) return this.printJson(rows)
    process.stdout.write(
      `${table(
        ['TENANT', 'DEFAULT', 'BRANCHES', 'PHYSICAL SIZE'],
        rows.map((t) => [
          t.tenant_id,
          t.is_default ? 'yes' : '',
          String(t.branches),
          String(t.current_physical_size),
        ]),
      )}\n`,
    )
  }
}
