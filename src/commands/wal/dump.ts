import { Flags } from '@oclif/core'
import { ZenithCommand } from '../../cli/base-command.js'
import { lsnFlag } from '../../cli/flags.js'
import { LineWriter } from '../../control/line-writer.js'
import { dumpWal } from '../../control/wal-dump.js'

export default class WalDump extends ZenithCommand {
  static override summary = 'decode a directory of WAL segments, as pg_waldump does'
  static override description =
    `Prints one line per record (resource manager, lengths, xid, LSN, prev-link, record type and block references), one JSON object per line with --json, or counts and bytes per record type with --stats.
Reading stops at --end, or at the end of valid WAL, which is reported on stderr with its LSN and reason.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --path .zenith/pgdatadirs/tenants/<tenant>/main/pgdata/pg_wal',
    '<%= config.bin %> <%= command.id %> --path ./pg_wal --start 0/1000000 --end 0/2000000 --json',
    '<%= config.bin %> <%= command.id %> --path ./pg_wal --stats',
  ]

  static override flags = {
    path: Flags.string({ char: 'p', summary: 'directory holding WAL segment files', required: true }),
    start: lsnFlag({ char: 's', summary: 'first record: the first one starting at or after this LSN' }),
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
    const result = await dumpWal(flags, out)
    if (out.open) process.stderr.write(`${result.summary}\n`)
  }
}
