import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { diedLines } from '../../cli/pageserver-status.js'
import { pageserverStatus } from '../../control/pageserver-process.js'

export default class PageserverStatus extends ClusterCommand {
  static override summary = 'show whether the pageserver runs and answers'
  static override flags = { json: Flags.boolean({ summary: 'print the status as JSON' }) }

  async run(): Promise<void> {
    const { flags } = await this.parse(PageserverStatus)
    const s = await pageserverStatus(this.repoDir(flags))
    if (flags.json) return this.printJson(s)
    const state = s.running ? chalk.green(`running (pid ${s.pid})`) : chalk.red(s.state)
    process.stdout.write(
      `pageserver ${state}, http ${s.http}, pg ${s.pg}${s.running && !s.reachable ? ', not answering' : ''}\n`,
    )
    process.stdout.write(diedLines(s))
  }
}
