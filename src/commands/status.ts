import { ClusterCommand } from '../cli/cluster-command.js'
import {
  renderDied,
  renderEndpoints,
  renderRemoteStorage,
  renderServerState,
  renderStorageControllerState,
} from '../cli/render.js'
import { type ClusterStatus, clusterStatus } from '../control/cluster.js'
import { pageserverName } from '../control/pageserver-process.js'

export default class Status extends ClusterCommand {
  static override summary =
    'show whether the storage controller, the pageservers, the safekeepers and the computes are running'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ]

  async run(): Promise<ClusterStatus> {
    const { flags } = await this.parse(Status)
    const s = await clusterStatus(this.repoDir(flags))
    if (!s.initialised) {
      this.print(`${s.repo_dir} is not a zenith repo dir; \`zenith start\` creates one`)
      return s
    }
    this.print(
      this.out.fields([
        ['repo dir', s.repo_dir],
        ...s.pageservers.flatMap((ps) => [
          [pageserverName(ps.id), renderServerState(this.out, ps)] as [string, string],
          ...renderDied(ps).map((l) => ['', l] as [string, string]),
        ]),
        // Every pageserver has the first one's: a tenant moves between them through it.
        ['remote storage', renderRemoteStorage(s.pageservers[0]?.remote_storage ?? null)],
        ...(s.storage_controller === null
          ? []
          : [
              ['storage controller', renderStorageControllerState(this.out, s.storage_controller)] as [
                string,
                string,
              ],
              ...renderDied(s.storage_controller).map((l) => ['', l] as [string, string]),
            ]),
        ...s.safekeepers.flatMap((sk) => [
          [`safekeeper ${sk.id}`, renderServerState(this.out, sk)] as [string, string],
          ...renderDied(sk).map((l) => ['', l] as [string, string]),
        ]),
        ['endpoints', s.endpoints.length === 0 ? 'none' : String(s.endpoints.length)],
      ]),
    )
    if (s.endpoints.length > 0) this.print(`\n${renderEndpoints(this.out, s.endpoints)}`)
    return s
  }
}
