import { Args, Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { tenantIdFlag } from '../../cli/flags.js'
import { renderLayerDump } from '../../cli/render-layer-dump.js'
import { dumpLayer, type LayerDump } from '../../control/layer-dump.js'

/** Enough entries to see what a layer holds without flooding a terminal. */
const HUMAN_LIMIT = 100

export default class LayerDumpCommand extends ClusterCommand {
  static override summary = "print a layer file's summary and entries, read from the file itself"
  static override description =
    `Reads the layer file directly (the pageserver may be stopped): its header (kind, key and LSN ranges, counts, compression, blocks, index), then every entry with its key in words, LSN, image or record, will_init, size and what the value holds; a WAL record is named by resource manager and record type.
LAYER is a path to a file, or a bare layer file name found in the branch's timeline directory of the pageserver.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 000000000000000000000000000000000000-FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF__0000000001500780-00000000019A2B49',
    '<%= config.bin %> <%= command.id %> <name> --branch dev --rel 1663/5/16384 --limit 20',
    '<%= config.bin %> <%= command.id %> ./.zenith/pageserver/tenants/<tenant>/timelines/<timeline>/<name> --json',
  ]
  static override args = {
    layer: Args.string({
      description: 'a layer file path, or a layer file name of the branch',
      required: true,
    }),
  }
  static override flags = {
    branch: Flags.string({ summary: 'the branch whose layer a bare name is (default: main)' }),
    'tenant-id': tenantIdFlag,
    key: Flags.string({ summary: 'only the entries of this key (36 hex digits)', exclusive: ['rel'] }),
    rel: Flags.string({
      summary: 'only the entries of this relation fork: spc/db/rel[.fork]',
      exclusive: ['key'],
    }),
    limit: Flags.integer({
      summary: `print at most this many entries (default ${HUMAN_LIMIT}; with --json, all)`,
      min: 0,
    }),
  }

  async run(): Promise<LayerDump> {
    const { args, flags } = await this.parse(LayerDumpCommand)
    const d = dumpLayer(this.repoDir(flags), {
      layer: args.layer,
      branch: flags.branch,
      tenantId: flags['tenant-id'],
      key: flags.key,
      rel: flags.rel,
      limit: flags.limit ?? (this.jsonEnabled() ? undefined : HUMAN_LIMIT),
    })
    this.print(renderLayerDump(this.out, d))
    return d
  }
}
