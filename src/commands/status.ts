import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { ClusterCommand, table } from '../cli/cluster-command.js'
import { diedLines } from '../cli/pageserver-status.js'
import { clusterStatus } from '../control/cluster.js'

export default class Status extends ClusterCommand {
  static override summary = 'show whether the pageserver and the computes are running'
  static override flags = { json: Flags.boolean({ summary: 'print the status as JSON' }) }

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    const s = await clusterStatus(this.repoDir(flags))
    if (flags.json) return this.printJson(s)
    if (!s.initialised || !s.pageserver) {
      process.stdout.write(`${s.repo_dir} is not a zenith repo dir; \`zenith start\` creates one\n`)
      return
    }
    const p = s.pageserver
    const state = p.running ? chalk.green(`running (pid ${p.pid})`) : chalk.red(p.state)
    process.stdout.write(`repo dir    ${s.repo_dir}\n`)
    process.stdout.write(
      `pageserver  ${state}, http ${p.http}, pg ${p.pg}${p.running && !p.reachable ? chalk.yellow(', not answering') : ''}\n`,
    )
    process.stdout.write(diedLines(p, '            '))
    if (s.endpoints.length === 0) {
      process.stdout.write('endpoints   none\n')
      return
    }
    process.stdout.write(
      `\n${table(
        ['ENDPOINT', 'BRANCH', 'PORT', 'STATUS', 'CONNSTR'],
        s.endpoints.map((e) => [e.name, e.branch, String(e.port), e.status, e.connstr]),
      )}\n`,
    )
  }
}
