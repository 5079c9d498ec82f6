import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import type { Step } from '../../control/steps.js'
import { WalLoadError, walLoadSteps } from '../../control/wal-load.js'
import { summaryText, type WalLoadReport } from '../../control/wal-load-report.js'
import { syntheticLoadSteps } from '../../control/wal-load-synthetic.js'
import { WORKLOADS } from '../../control/wal-load-workloads.js'
import { DURATION_HINT, parseDuration, parseRate, UnitError } from '../../lib/units.js'
import { RECORD_MIXES, type RecordMix } from '../../postgres/synthetic-wal.js'

/** Flags of the compute mode, which a synthetic load has no use for. */
const COMPUTE_ONLY = ['tps', 'workload', 'clients', 'scale'] as const

const rateFlag = Flags.custom<number>({ helpValue: '20MiB/s', parse: async (input) => parseRate(input) })
const durationFlag = Flags.custom<number>({
  helpValue: '60s',
  parse: async (input) => {
    const ms = parseDuration(input)
    if (ms === 0) throw new UnitError(`--duration must be longer than 0; ${DURATION_HINT}`)
    return ms
  },
})

export default class WalLoad extends ClusterCommand {
  static override summary = 'drive a compute with a built-in workload paced to a WAL or transaction rate'
  static override description =
    `Clients run the workload's transactions on the running compute of the branch, paced so that the compute writes --rate of WAL (measured with pg_current_wal_lsn) or commits --tps transactions a second. The workload's tables are created when missing and filled to --scale.
Each second shows the WAL rate, transactions per second, commit latency and how far the pageserver and the safekeepers are behind the compute; the summary gives the same over the whole run, and under --json it is one object, the last line.
With --synthetic no compute is involved: zenith makes valid WAL itself (--record-mix: page images, small commit records, or both) at --rate on a new branch of its own (--branch names it; default synthetic-<n>), serves it to the pageserver as a walsender, and reports the same figures, so the pageserver's ingest can be measured and pushed to its limit. What it ingested stays on the branch, which "zenith pg start" can start a compute on.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --rate 20MiB/s --duration 30s',
    '<%= config.bin %> <%= command.id %> --branch dev --tps 200 --workload pgbench --scale 10 --json',
    '<%= config.bin %> <%= command.id %> --synthetic --rate 100MiB/s --duration 10s --record-mix images',
  ]

  static override flags = {
    branch: Flags.string({
      char: 'b',
      summary: 'the branch whose compute to load (with --synthetic: the new branch, default synthetic-<n>)',
    }),
    'tenant-id': tenantIdFlag,
    rate: rateFlag({
      char: 'r',
      summary: 'target WAL rate, in bytes per second with a unit (KiB/s, MiB/s, GiB/s)',
      exactlyOne: ['rate', 'tps'],
    }),
    tps: Flags.integer({ summary: 'target transactions per second', min: 1, exactlyOne: ['rate', 'tps'] }),
    duration: durationFlag({
      char: 'd',
      summary: 'how long to load (ms, s, m, h)',
      default: 60_000,
      defaultHelp: async () => '60s',
    }),
    clients: Flags.integer({ char: 'c', summary: 'concurrent connections', default: 4, min: 1, max: 256 }),
    workload: Flags.string({
      char: 'w',
      summary: 'the transactions to run',
      options: [...WORKLOADS],
      default: 'mixed',
    }),
    scale: Flags.integer({
      char: 's',
      summary: 'table size: 100,000 rows (pgbench: one branch) per unit',
      default: 1,
      min: 1,
    }),
    synthetic: Flags.boolean({
      summary: 'no compute: zenith makes the WAL itself and serves it to the pageserver (needs --rate)',
      default: false,
    }),
    to: Flags.string({
      summary: 'with --synthetic: who pulls the WAL, the pageserver or the safekeepers (it reads from them)',
      options: ['pageserver', 'safekeepers'],
    }),
    'record-mix': Flags.string({
      summary: 'with --synthetic: page images, small commit records, or both',
      options: [...RECORD_MIXES],
    }),
  }

  /** One line, as the benchmarks print theirs: scripts take the last line of a run as its figures. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json)}\n`)
  }

  async run(): Promise<WalLoadReport> {
    const { flags, raw } = await this.parse(WalLoad)
    const given = new Set(raw.flatMap((t) => (t.type === 'flag' ? [t.flag] : [])))
    const repoDir = this.repoDir(flags)
    let load: { steps: Step[]; report: () => WalLoadReport }
    if (flags.synthetic) {
      const refused = COMPUTE_ONLY.filter((f) => given.has(f))
      if (refused.length > 0) {
        throw new WalLoadError(
          `--synthetic takes --rate, --duration, --record-mix, --to and --branch; ${refused.map((f) => `--${f}`).join(', ')} belong to a compute's load`,
          { kind: 'user_input' },
        )
      }
      load = syntheticLoadSteps({
        repoDir,
        tenantId: flags['tenant-id'],
        branch: flags.branch,
        rateBytesPerSec: flags.rate!,
        durationMs: flags.duration,
        recordMix: (flags['record-mix'] ?? 'mixed') as RecordMix,
        to: (flags.to ?? 'pageserver') as 'pageserver' | 'safekeepers',
      })
    } else {
      if (flags['record-mix'] !== undefined) {
        throw new WalLoadError(
          '--record-mix needs --synthetic: a compute writes the WAL its workload makes',
          {
            kind: 'user_input',
          },
        )
      }
      load = await walLoadSteps({
        repoDir,
        tenantId: flags['tenant-id'],
        branch: flags.branch ?? 'main',
        target:
          flags.rate === undefined
            ? { kind: 'tps', tps: flags.tps! }
            : { kind: 'wal', bytesPerSec: flags.rate },
        durationMs: flags.duration,
        clients: flags.clients,
        workload: flags.workload as (typeof WORKLOADS)[number],
        scale: flags.scale,
      })
    }
    await this.runSteps(load.steps)
    const r = load.report()
    this.print(summaryText(r))
    return r
  }
}
