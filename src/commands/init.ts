import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { initSteps } from '../control/cluster.js'
import { parseSettings } from '../control/endpoints.js'

export const initFlags = {
  'pg-distrib-dir': Flags.string({
    summary: 'the PostgreSQL 15 installation (default /usr/lib/postgresql/15)',
  }),
  'pageserver-pg-port': Flags.integer({
    summary: 'port of the page service (default 64000)',
    min: 1,
    max: 65535,
  }),
  'pageserver-http-port': Flags.integer({
    summary: 'port of the HTTP API (default 9898)',
    min: 1,
    max: 65535,
  }),
  'compute-port-base': Flags.integer({
    summary: 'first port given to computes (default 55432)',
    min: 1,
    max: 65535,
  }),
  'tenant-config': Flags.string({
    char: 'c',
    summary: 'a default tenant config value as key=value (repeatable)',
    multiple: true,
  }),
}

export function initOptions(flags: {
  'pg-distrib-dir'?: string
  'pageserver-pg-port'?: number
  'pageserver-http-port'?: number
  'compute-port-base'?: number
  'tenant-config'?: string[]
}) {
  return {
    pgDistribDir: flags['pg-distrib-dir'],
    pageserverPgPort: flags['pageserver-pg-port'],
    pageserverHttpPort: flags['pageserver-http-port'],
    computePortBase: flags['compute-port-base'],
    tenantDefaults: parseSettings(flags['tenant-config'] ?? []),
  }
}

export default class Init extends ClusterCommand {
  static override summary =
    'create a local cluster: repo dir, pageserver config, a default tenant with branch main'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --repo-dir /tmp/zenith --pageserver-http-port 19898 -c gc_horizon=1048576',
  ]
  static override flags = initFlags

  async run(): Promise<{ repo_dir: string; steps: string[] }> {
    const { flags } = await this.parse(Init)
    const repoDir = this.repoDir(flags)
    const steps = await this.locked(repoDir, () => this.runSteps(initSteps(repoDir, initOptions(flags))), {
      create: true,
    })
    return { repo_dir: repoDir, steps }
  }
}
