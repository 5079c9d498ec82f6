import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { type MigrateReport, migrateSteps } from '../../control/migrate.js'

export default class TenantMigrate extends ClusterCommand {
  static override summary = 'move a tenant to another pageserver, live, as Neon does'
  static override description =
    'The old pageserver uploads what it has and turns AttachedStale; the new one is attached with a new ' +
    'generation (AttachedMulti), streams the WAL until it has what the old one had, and turns ' +
    'AttachedSingle; then the old one detaches. Computes keep running and writing through the move.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --to 2',
    '<%= config.bin %> <%= command.id %> --tenant-id 9e4c… --to 1 --json',
  ]
  static override flags = {
    'tenant-id': tenantIdFlag,
    to: Flags.integer({ summary: 'the pageserver to move it to', required: true, min: 1 }),
  }

  async run(): Promise<MigrateReport> {
    const { flags } = await this.parse(TenantMigrate)
    const repoDir = this.repoDir(flags)
    const r = await this.locked(repoDir, async () => {
      const { steps, report } = migrateSteps(repoDir, { tenantId: flags['tenant-id'], to: flags.to })
      await this.runSteps(steps)
      return report()
    })
    this.print(
      `tenant ${r.tenant_id} moved from pageserver ${r.from} to pageserver ${r.to} (generation ${r.generation}) in ${(r.elapsed_ms / 1000).toFixed(1)} s`,
    )
    return r
  }
}
