import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { type BranchRow, showBranch } from '../../control/tenants.js'
import { formatSize } from '../../lib/units.js'

export default class TimelineShow extends ClusterCommand {
  static override summary = "show a branch's timeline: LSNs, sizes and its WAL receiver"
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> dev --json',
  ]
  static override args = { branch: Args.string({ description: 'branch name', required: true }) }
  static override flags = {
    'tenant-id': Flags.string({ summary: 'the tenant (default: the default tenant)' }),
  }

  async run(): Promise<BranchRow> {
    const { args, flags } = await this.parse(TimelineShow)
    const t = await showBranch(this.repoDir(flags), args.branch, { tenantId: flags['tenant-id'] })
    const rows: [string, string][] = [
      ['branch', t.branch ?? '-'],
      ['tenant_id', t.tenant_id],
      ['timeline_id', t.timeline_id],
      ['ancestor', t.ancestor_branch ? `${t.ancestor_branch} @${t.ancestor_lsn}` : '-'],
      ['last_record_lsn', t.last_record_lsn],
      ['disk_consistent_lsn', t.disk_consistent_lsn],
      ['remote_consistent_lsn', t.remote_consistent_lsn],
      ['latest_gc_cutoff_lsn', t.latest_gc_cutoff_lsn],
      ['current_logical_size', formatSize(t.current_logical_size)],
      [
        'wal receiver',
        `${t.walreceiver_status}${t.wal_source_connstr ? ` from ${t.wal_source_connstr}` : ''}`,
      ],
      ['last_received_msg_lsn', t.last_received_msg_lsn ?? '-'],
      ...(t.walreceiver_error ? ([['wal receiver error', t.walreceiver_error]] as [string, string][]) : []),
    ]
    this.print(this.out.fields(rows))
    return t
  }
}
