import { Flags } from '@oclif/core'
import { ClusterCommand } from '../cli/cluster-command.js'
import { initSteps, startSteps } from '../control/cluster.js'
import { runPageserver } from '../control/pageserver-process.js'
import { isInitialised } from '../control/repo-config.js'
import { initFlags, initOptions } from './init.js'

export default class Start extends ClusterCommand {
  static override summary = 'start the local cluster (initialising the repo dir first when there is none)'
  static override description =
    'Starts the pageserver as a background process, or with --embedded inside this process until Ctrl-C. Computes are started with `zenith pg start`.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --embedded',
  ]
  static override flags = {
    embedded: Flags.boolean({ summary: 'run the pageserver in this process until Ctrl-C (or SIGTERM)' }),
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
    // The lock covers setting up only: the pageserver then runs here until Ctrl-C, and other commands
    // (pg start, zenith stop) must get the repo dir meanwhile.
    const running = await this.locked(
      repoDir,
      async () => {
        if (!isInitialised(repoDir)) await this.runSteps(initSteps(repoDir, initOptions(flags)))
        return runPageserver(repoDir, { logToStdout: false })
      },
      { create: true },
    )
    const cfg = running.pageserver.config
    this.print(
      `pageserver running in this process (pid ${process.pid}): http ${cfg.listenHttpAddr.host}:${cfg.listenHttpAddr.port}, ` +
        `pg ${cfg.listenPgAddr.host}:${cfg.listenPgAddr.port}; Ctrl-C stops it`,
    )
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    this.print('stopping the pageserver')
    await running.stop()
    this.print('pageserver stopped')
    return undefined
  }
}
