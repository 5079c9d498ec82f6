import { ClusterCommand } from '../../cli/cluster-command.js'
import { runStorageController } from '../../control/storage-controller-process.js'

export default class StorageControllerRun extends ClusterCommand {
  static override summary =
    'run the storage controller in the foreground, logging to stdout (what `storage-controller start` launches)'
  static override examples = ['<%= config.bin %> <%= command.id %> --repo-dir .zenith']

  async run(): Promise<void> {
    const { flags } = await this.parse(StorageControllerRun)
    const running = await runStorageController(this.repoDir(flags), { logToStdout: true })
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await running.stop()
  }
}
