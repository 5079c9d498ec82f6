import { ClusterCommand } from '../../cli/cluster-command.js'
import { renderDied, renderStorageControllerState } from '../../cli/render.js'
import {
  type StorageControllerStatus,
  storageControllerStatus,
} from '../../control/storage-controller-process.js'

export default class StorageControllerStatusCommand extends ClusterCommand {
  static override summary = 'show whether the storage controller runs, and the generation of every tenant'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<StorageControllerStatus> {
    const { flags } = await this.parse(StorageControllerStatusCommand)
    const s = await storageControllerStatus(this.repoDir(flags))
    const rows = s.tenants.map((t) => [t.tenant_id, String(t.generation), String(t.node_id), t.mode])
    this.print(
      [
        `storage controller ${renderStorageControllerState(this.out, s)}`,
        ...renderDied(s),
        s.tenants.length === 0
          ? 'no tenant is attached'
          : this.out.table(['TENANT', 'GENERATION', 'PAGESERVER', 'MODE'], rows),
      ].join('\n'),
    )
    return s
  }
}
