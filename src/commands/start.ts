import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { initSteps, runEmbedded, startSteps } from '../control/cluster.js'
import { isInitialised } from '../control/repo-config.js'
import { initFlags, initOptions } from './init.js'

export default class Start extends ClusterCommand {
  static override summary = 'start the local cluster (initialising the repo dir first when there is none)'
  static override description =
    'Starts the storage controller, the safekeepers and then the pageserver as background processes (those not running yet), or with --embedded inside this process until Ctrl-C. Computes are started with `zenith pg start`.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --embedded',
  ]
  static override flags = {
    embedded: Flags.boolean({
      summary:
        'run the storage controller, the safekeepers and the pageserver in this process until Ctrl-C (or SIGTERM)',
    }),
    ...initFlags,
  }

  async run(): Promise<{ repo_dir: string; steps: string[] } | undefined> {
    const { flags } = await this.parse(Start)
    const repoDir = this.repoDir(flags)
    if (!flags.embedded) {
      const steps = await this.locked(repoDir, () => this.runSteps(startSteps(repoDir, initOptions(flags))), {
        create: true,
      })
      return { repo_dir: repoDir, steps }
    }
    // The lock covers setting up only: the servers then run here until Ctrl-C, and other commands
    // (pg start, zenith stop) must get the repo dir meanwhile.
    const cluster = await this.locked(
      repoDir,
      async () => {
        if (!isInitialised(repoDir)) await this.runSteps(initSteps(repoDir, initOptions(flags)))
        return runEmbedded(repoDir)
      },
      { create: true },
    )
    const { servers } = cluster
    servers.forEach((s, i) => {
      const last = i === servers.length - 1
      this.print(
        `${s.name} running in this process (pid ${process.pid}): http ${s.http}${s.pg === null ? '' : `, pg ${s.pg}`}` +
          (last ? '; Ctrl-C stops them' : ''),
      )
    })
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    this.print(
      `stopping ${[...servers]
        .reverse()
        .map((s) => s.name)
        .join(', ')}`,
    )
    await cluster.stop((name) => this.print(`${name} stopped`))
    return undefined
  }
}
