import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { lsnFlag } from '../../cli/flags.js'
import { LineWriter } from '../../control/line-writer.js'
import { dumpWal } from '../../control/wal-dump.js'

export default class WalDump extends ClusterCommand {
  static override summary = "decode WAL segments, as pg_waldump does: a directory's, or a branch's"
  static override description =
    `Prints one line per record (resource manager, lengths, xid, LSN, prev-link, record type and block references), one JSON object per line with --json, or counts and bytes per record type with --stats.
--path reads a directory of segment files; --branch reads the branch's WAL where the cluster keeps it: on the safekeeper with the highest flush_lsn, or without safekeepers in the pg_wal of the branch's compute.
Reading stops at --end, or at the end of valid WAL, which is reported on stderr with its LSN and reason.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --branch main',
    '<%= config.bin %> <%= command.id %> --branch dev --start 0/1A00000 --json',
    '<%= config.bin %> <%= command.id %> --path ./pg_wal --start 0/1000000 --end 0/2000000 --json',
    '<%= config.bin %> <%= command.id %> --path ./pg_wal --stats',
  ]

  static override flags = {
    path: Flags.string({
      char: 'p',
      summary: 'directory holding WAL segment files',
      exactlyOne: ['path', 'branch'],
    }),
    branch: Flags.string({
      char: 'b',
      summary: "the branch whose WAL to read, from a safekeeper or its compute's pg_wal",
      exactlyOne: ['path', 'branch'],
    }),
    'tenant-id': Flags.string({
      summary: 'the tenant of --branch (default: the default tenant)',
      dependsOn: ['branch'],
    }),
    start: lsnFlag({
      char: 's',
      summary: 'first record: the first one starting at or after this LSN (default: where the WAL begins)',
    }),
    end: lsnFlag({ char: 'e', summary: 'stop before the first record not wholly below this LSN' }),
    timeline: Flags.integer({
      char: 't',
      summary: 'timeline to read (default: the newest one present)',
      min: 1,
    }),
    json: Flags.boolean({ summary: 'print one JSON object per record (or the statistics as one object)' }),
    stats: Flags.boolean({ summary: 'print counts and bytes per record type instead of records' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(WalDump)
    const out = new LineWriter(process.stdout)
    const result = await dumpWal(
      { ...flags, tenantId: flags['tenant-id'], repoDir: this.repoDir(flags) },
      out,
    )
    if (!out.open) return
    if (result.source) process.stderr.write(`${result.source}\n`)
    process.stderr.write(`${result.summary}\n`)
  }
}
