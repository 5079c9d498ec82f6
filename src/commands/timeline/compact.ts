import { Flags } from '@oclif/core'
import { LayerOperationCommand } from '../../cli/layer-operation-command.js'
import type { LayerOperationReport } from '../../control/layers.js'

export default class TimelineCompact extends LayerOperationCommand {
  static override summary =
    "compact a branch's L0 delta layers into L1 and create image layers, and show what changed"
  // oclif reads a command's own static args and flags only.
  static override args = LayerOperationCommand.args
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> main --force --json',
  ]
  static override flags = {
    ...LayerOperationCommand.flags,
    force: Flags.boolean({
      summary:
        'compact the L0 layers and create image layers whatever compaction_threshold and image_creation_threshold say',
    }),
  }

  async run(): Promise<LayerOperationReport> {
    const { args, flags } = await this.parse(TimelineCompact)
    return this.operate('compact', args.branch, flags, { force: flags.force })
  }
}
