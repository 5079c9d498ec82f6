/**
 * Commands that work on a local cluster: the repo dir (`--repo-dir`, `$ZENITH_REPO_DIR`, `./.zenith`),
 * and output helpers — JSON for scripts, chalk colours only on a TTY, listr2 progress for
 * multi-step work on a TTY and plain lines otherwise.
 */
import { Flags } from '@oclif/core'
import chalk from 'chalk'
import { Listr } from 'listr2'
import { resolveRepoDir } from '../control/repo-config.js'
import { runSteps as runPlain, type Step, titleAfter } from '../control/steps.js'
import { ZenithCommand } from './base-command.js'

export abstract class ClusterCommand extends ZenithCommand {
  static override baseFlags = {
    ...ZenithCommand.baseFlags,
    'repo-dir': Flags.string({
      summary: 'the cluster state directory (default: $ZENITH_REPO_DIR or ./.zenith)',
      helpGroup: 'GLOBAL',
    }),
  }

  protected repoDir(flags: { 'repo-dir'?: string }): string {
    return resolveRepoDir(flags['repo-dir'])
  }

  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  }

  /** Runs steps with listr2 on a TTY, as one line per finished step otherwise, silently for --json. */
  protected async runSteps(steps: readonly Step[], opts: { quiet?: boolean } = {}): Promise<string[]> {
    if (opts.quiet) return runPlain(steps)
    if (!process.stdout.isTTY) return runPlain(steps, (title) => process.stdout.write(`${title}\n`))
    const done: string[] = []
    await new Listr(
      steps.map((s) => ({
        title: s.title,
        task: async (_ctx: unknown, task: { title: string }) => {
          const title = titleAfter(s, await s.run())
          task.title = title
          done.push(title)
        },
      })),
      { exitOnError: true, rendererOptions: { collapseErrors: false, showErrorMessage: false } },
    ).run()
    return done
  }
}

/** A plain text table: a header and left-aligned columns, the header dimmed on a TTY. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  return [chalk.bold(line(headers)), ...rows.map(line)].join('\n')
}
