import { ClusterCommand } from '../../cli/cluster-command.js'
import { listTenants, type TenantRow } from '../../control/tenants.js'
import { formatSize } from '../../lib/units.js'

export default class TenantList extends ClusterCommand {
  static override summary = 'list the tenants of the pageserver'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<TenantRow[]> {
    const { flags } = await this.parse(TenantList)
    const rows = await listTenants(this.repoDir(flags))
    this.print(
      this.out.table(
        ['TENANT', 'PAGESERVER', 'DEFAULT', 'BRANCHES', 'PHYSICAL SIZE'],
        rows.map((t) => [
          t.tenant_id,
          String(t.pageserver_id),
          t.is_default ? 'yes' : '',
          String(t.branches),
          t.current_physical_size === null ? '-' : formatSize(t.current_physical_size),
        ]),
      ),
    )
    return rows
  }
}
