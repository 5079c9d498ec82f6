import { LayerOperationCommand } from '../../cli/layer-operation-command.js'
import type { LayerOperationReport } from '../../control/layers.js'

export default class TimelineCheckpoint extends LayerOperationCommand {
  static override summary = "flush a branch's in-memory layers to L0 delta layer files, and show what changed"
  // oclif reads a command's own static args and flags only.
  static override args = LayerOperationCommand.args
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> dev --json',
  ]
  static override flags = LayerOperationCommand.flags

  async run(): Promise<LayerOperationReport> {
    const { args, flags } = await this.parse(TimelineCheckpoint)
    return this.operate('checkpoint', args.branch, flags)
  }
}
