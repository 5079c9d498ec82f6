import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { stopStorageController } from '../../control/storage-controller-process.js'

export default class StorageControllerStop extends ClusterCommand {
  static override summary = 'stop the storage controller'
  static override description =
    'Pageservers need it only when they start (re-attach) and to confirm their generation before deleting objects or advancing remote_consistent_lsn; those wait and retry while it is down.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --immediate',
  ]
  static override flags = {
    immediate: Flags.boolean({ summary: 'kill it (its state is on disk after every change)' }),
  }

  async run(): Promise<{ was_running: boolean }> {
    const { flags } = await this.parse(StorageControllerStop)
    const repoDir = this.repoDir(flags)
    const { wasRunning } = await this.locked(repoDir, () =>
      stopStorageController(repoDir, { immediate: flags.immediate }),
    )
    this.print(wasRunning ? 'storage controller stopped' : 'the storage controller was not running')
    return { was_running: wasRunning }
  }
}
