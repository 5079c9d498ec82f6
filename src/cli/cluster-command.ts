/**
 * Commands that work on a local cluster: the repo dir (`--repo-dir`, `$ZENITH_REPO_DIR`, `./.zenith`), its
 * lock for commands that change it, and listr2 progress for multi-step work on a TTY (plain lines
 * otherwise, nothing under --json).
 */
import { mkdirSync } from 'node:fs'
import { Flags } from '@oclif/core'
import { Listr } from 'listr2'
import { resolveRepoDir } from '../control/repo-config.js'
import { withRepoLock } from '../control/repo-lock.js'
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

  /**
   * Runs `fn` holding the repo dir's lock: every command that changes the repo config or starts and stops
   * processes does its work inside, so concurrent commands take turns.
   */
  protected locked<T>(repoDir: string, fn: () => Promise<T>, opts: { create?: boolean } = {}): Promise<T> {
    // Computes run as the postgres OS user when we are root: it must be able to enter the repo dir.
    if (opts.create) mkdirSync(repoDir, { recursive: true, mode: 0o755 })
    return withRepoLock(repoDir, ['zenith', ...this.id!.split(':'), ...this.argv].join(' '), fn)
  }

  /** Runs steps with listr2 on a TTY, as one line per finished step otherwise, silently for --json. */
  protected async runSteps(steps: readonly Step[]): Promise<string[]> {
    if (this.jsonEnabled()) return runPlain(steps)
    if (!process.stdout.isTTY) return runPlain(steps, (title) => this.print(title))
    const done: string[] = []
    await new Listr(
      steps.map((s) => ({
        title: s.title,
        task: async (_ctx: unknown, task: { title: string }) => {
          const title = titleAfter(
            s,
            await s.run((now) => {
              task.title = now
            }),
          )
          task.title = title
          done.push(title)
        },
      })),
      { exitOnError: true, rendererOptions: { collapseErrors: false, showErrorMessage: false } },
    ).run()
    return done
  }
}
