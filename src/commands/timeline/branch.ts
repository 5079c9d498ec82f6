import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { type BranchRow, createBranch } from '../../control/tenants.js'

export default class TimelineBranch extends ClusterCommand {
  static override summary = 'create a branch of another branch, at its latest LSN or at an older one'
  static override description =
    'Branching writes metadata only, whatever the size of the data. An LSN that has not arrived yet is waited for; one below the GC cutoff is refused.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --branch-name dev',
    '<%= config.bin %> <%= command.id %> --branch-name before-migration --ancestor-start-lsn 0/16B3748',
  ]
  static override flags = {
    'branch-name': Flags.string({ summary: 'name of the new branch', required: true }),
    'ancestor-branch-name': Flags.string({ summary: 'the branch to branch from', default: 'main' }),
    'ancestor-start-lsn': Flags.string({ summary: 'the LSN to branch at, X/X (default: the latest)' }),
    'tenant-id': tenantIdFlag,
  }

  async run(): Promise<BranchRow> {
    const { flags } = await this.parse(TimelineBranch)
    const repoDir = this.repoDir(flags)
    const b = await this.locked(repoDir, () =>
      createBranch(repoDir, {
        branchName: flags['branch-name'],
        ancestorBranch: flags['ancestor-branch-name'],
        ancestorStartLsn: flags['ancestor-start-lsn'],
        tenantId: flags['tenant-id'],
      }),
    )
    this.print(
      `branch ${b.branch} created from ${b.ancestor_branch} at ${b.ancestor_lsn} (timeline ${b.timeline_id})`,
    )
    return b
  }
}
