import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { parseSettings } from '../../control/endpoints.js'
import { tenantConfig } from '../../control/tenants.js'
import { parseConfigValue, TENANT_CONFIG_KEYS, TENANT_CONFIG_SCHEMA } from '../../engine/tenant-config.js'

const flagName = (key: string) => key.replace(/_/g, '-')

/** One flag per tenant config key, named and described from the engine's schema. */
const keyFlags = Object.fromEntries(
  TENANT_CONFIG_KEYS.map((k) => [
    flagName(k),
    Flags.string({ summary: TENANT_CONFIG_SCHEMA[k].description, helpGroup: 'CONFIG' }),
  ]),
)

export default class TenantConfig extends ClusterCommand {
  static override summary = "show or change a tenant's config"
  static override description =
    'Without setting flags, prints the effective config and which values the tenant overrides. Sizes take bytes or IEC units ("256 MiB"), durations a unit ("10 m", "7 days"). `-c key=null` removes an override.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --gc-horizon "64 MiB" --pitr-interval "1 h"',
    '<%= config.bin %> <%= command.id %> -c compaction_threshold=5 --json',
  ]
  static override flags = {
    'tenant-id': tenantIdFlag,
    config: Flags.string({ char: 'c', summary: 'a config value as key=value (repeatable)', multiple: true }),
    ...keyFlags,
  }

  async run(): Promise<Awaited<ReturnType<typeof tenantConfig>>> {
    const { flags } = await this.parse(TenantConfig)
    // Checked here for a clear error before anything is sent; sent as written, for the pageserver to read.
    const patch: Record<string, string | null> = {}
    for (const [k, v] of Object.entries(parseSettings(flags.config ?? []))) {
      if (v !== 'null') parseConfigValue(k, v)
      patch[k] = v === 'null' ? null : v
    }
    const given = flags as Record<string, unknown>
    for (const k of TENANT_CONFIG_KEYS) {
      const v = given[flagName(k)]
      if (typeof v !== 'string') continue
      parseConfigValue(k, v)
      patch[k] = v
    }
    const info = await tenantConfig(this.repoDir(flags), { tenantId: flags['tenant-id'], patch })
    this.print(`tenant ${info.tenant_id}`)
    this.print(
      this.out.table(
        ['KEY', 'VALUE', 'SOURCE'],
        TENANT_CONFIG_KEYS.map((k) => [
          k,
          String(info.effective_config[k]),
          k in info.tenant_specific_overrides ? 'tenant' : 'default',
        ]),
      ),
    )
    return info
  }
}
