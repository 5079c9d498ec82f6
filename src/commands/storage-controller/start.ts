import { ClusterCommand } from '../../cli/cluster-command.js'
import { startStorageController, storageControllerFiles } from '../../control/storage-controller-process.js'

export default class StorageControllerStart extends ClusterCommand {
  static override summary = 'start the storage controller (the generations of every tenant) in the background'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<{ pid: number; already_running: boolean; log_file: string }> {
    const { flags } = await this.parse(StorageControllerStart)
    const repoDir = this.repoDir(flags)
    const { pid, alreadyRunning } = await this.locked(repoDir, () => startStorageController(repoDir))
    const logFile = storageControllerFiles(repoDir).logFile
    this.print(
      `${alreadyRunning ? 'the storage controller is already running' : 'storage controller started'} (pid ${pid}); log: ${logFile}`,
    )
    return { pid, already_running: alreadyRunning, log_file: logFile }
  }
}
