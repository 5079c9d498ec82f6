import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { colorEnabled } from '../cli/output.js'
import type { DashboardFrame } from '../control/dashboard-frame.js'
import { loadClusterConfig, tenantOf, timelineOfBranch } from '../control/repo-config.js'

export default class Dashboard extends ClusterCommand {
  static override summary =
    'a live view of the cluster: processes, LSN ladders and lag, ingest and GetPage rates, layers, memory, tasks'
  static override description =
    'Refreshes every --interval ms from the HTTP APIs of the pageserver and the safekeepers and one SQL ' +
    'query per running compute. Keys: ↑/↓ or tab select a timeline, l shows its layers, q or Ctrl-C quits.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --branch dev --interval 500',
    '<%= config.bin %> <%= command.id %> --once',
    '<%= config.bin %> <%= command.id %> --json',
  ]
  static override flags = {
    interval: Flags.integer({ summary: 'refresh period in milliseconds', default: 1000, min: 200 }),
    once: Flags.boolean({ summary: 'print one frame as plain text and exit' }),
    'tenant-id': Flags.string({
      summary: 'the tenant of the timeline selected first (default: the default tenant)',
    }),
    branch: Flags.string({ summary: 'the branch selected first (default: the first one)' }),
  }

  async run(): Promise<DashboardFrame | undefined> {
    const { flags } = await this.parse(Dashboard)
    const repoDir = this.repoDir(flags)
    const config = loadClusterConfig(repoDir)
    const tenantId = flags.branch || flags['tenant-id'] ? tenantOf(config, flags['tenant-id']) : null
    const initialTimelineId =
      tenantId === null
        ? null
        : flags.branch
          ? timelineOfBranch(config, tenantId, flags.branch)
          : (Object.values(config.branches[tenantId] ?? {})[0] ?? null)
    const opts = { repoDir, intervalMs: flags.interval, initialTimelineId }
    const live = !(flags.once || this.jsonEnabled())
    // ink draws only the last frame, at exit, when CI is set (is-in-ci, read once as ink loads); the
    // live screen on a terminal must draw every frame, so ink is loaded here, after clearing it.
    if (live) for (const name of ['CI', 'CONTINUOUS_INTEGRATION']) delete process.env[name]
    const { dashboardOnce, runDashboard } = await import('../tui/run.js')
    if (!live) {
      const { frame, text } = await dashboardOnce({ ...opts, columns: process.stdout.columns || 160 })
      this.print(text)
      return frame
    }
    await runDashboard({ ...opts, color: colorEnabled(process.stdout) })
    return undefined
  }
}
