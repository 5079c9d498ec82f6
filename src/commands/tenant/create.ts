import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { parseSettings } from '../../control/endpoints.js'
import { createTenant } from '../../control/tenants.js'

export default class TenantCreate extends ClusterCommand {
  static override summary = 'create a tenant with its branch main (initdb on the pageserver)'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --set-default',
    '<%= config.bin %> <%= command.id %> -c gc_horizon=1048576 -c pitr_interval="1 h"',
  ]
  static override flags = {
    'tenant-id': Flags.string({ summary: 'the new tenant id, 32 hex digits (default: random)' }),
    'set-default': Flags.boolean({ summary: 'make it the default tenant of later commands' }),
    config: Flags.string({
      char: 'c',
      summary: 'a tenant config value as key=value (repeatable)',
      multiple: true,
    }),
  }

  async run(): Promise<{ tenant_id: string; timeline_id: string; is_default: boolean }> {
    const { flags } = await this.parse(TenantCreate)
    const repoDir = this.repoDir(flags)
    const r = await this.locked(repoDir, () =>
      createTenant(repoDir, {
        tenantId: flags['tenant-id'],
        setDefault: flags['set-default'],
        config: parseSettings(flags.config ?? []),
      }),
    )
    this.print(
      `tenant ${r.tenantId} created with branch main (timeline ${r.timelineId})${r.isDefault ? ', the default tenant' : ''}`,
    )
    return { tenant_id: r.tenantId, timeline_id: r.timelineId, is_default: r.isDefault }
  }
}
