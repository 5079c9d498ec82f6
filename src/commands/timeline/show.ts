import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { showBranch } from '../../control/tenants.js'

export default class TimelineShow extends ClusterCommand {
  static override summary = "show a branch's timeline: LSNs, sizes and its WAL receiver"
  static override args = { branch: Args.string({ description: 'branch name', required: true }) }
  static override flags = {
    'tenant-id': Flags.string({ summary: 'the tenant (default: the default tenant)' }),
    json: Flags.boolean({ summary: 'print the timeline as JSON' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(TimelineShow)
    const t = await showBranch(this.repoDir(flags), args.branch, { tenantId: flags['tenant-id'] })
    if (flags.json) return this.printJson(t)
    const rows: [string, unknown][] = [
      ['branch', t.branch],
      ['tenant_id', t.tenant_id],
      ['timeline_id', t.timeline_id],
      ['ancestor', t.ancestor_branch ? `${t.ancestor_branch} @${t.ancestor_lsn}` : '-'],
      ['last_record_lsn', t.last_record_lsn],
      ['disk_consistent_lsn', t.disk_consistent_lsn],
      ['remote_consistent_lsn', t.remote_consistent_lsn],
      ['latest_gc_cutoff_lsn', t.latest_gc_cutoff_lsn],
      ['current_logical_size', t.current_logical_size],
      [
        'wal receiver',
        `${t.walreceiver_status}${t.wal_source_connstr ? ` from ${t.wal_source_connstr}` : ''}`,
      ],
      ['last_received_msg_lsn', t.last_received_msg_lsn ?? '-'],
      ...(t.walreceiver_error ? ([['wal receiver error', t.walreceiver_error]] as [string, unknown][]) : []),
    ]
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(22)} ${v}\n`)
  }
}
