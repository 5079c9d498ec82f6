import { Flags } from '@oclif/core'
import { LayerOperationCommand } from '../../cli/layer-operation-command.js'
import type { LayerOperationReport } from '../../control/layers.js'

export default class TimelineGc extends LayerOperationCommand {
  static override summary =
    "garbage-collect a branch's layers that no LSN to keep needs, and show what changed"
  // oclif reads a command's own static args and flags only.
  static override args = LayerOperationCommand.args
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> main --gc-horizon 0 --json',
  ]
  static override flags = {
    ...LayerOperationCommand.flags,
    'gc-horizon': Flags.integer({
      summary: "bytes of WAL history to keep below last_record_lsn, instead of the tenant's gc_horizon",
      min: 0,
    }),
  }

  async run(): Promise<LayerOperationReport> {
    const { args, flags } = await this.parse(TimelineGc)
    return this.operate('gc', args.branch, flags, { gcHorizon: flags['gc-horizon'] })
  }
}
