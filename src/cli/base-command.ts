/**
 * The base of every zenith command. `--json` is on every command (oclif's enableJsonFlag): a command's
 * `run()` returns its result as typed data, which oclif prints as JSON under `--json`, while `print`
 * writes the human form through the one output writer and stays silent under `--json`. Failures of every
 * kind leave through `catch`, which hands them to src/cli/errors.ts, the one place that decides what a
 * user sees and which exit code a script gets.
 */
import { Command, Errors, Flags } from '@oclif/core'
import { setLockWaitReporter } from '../control/repo-lock.js'
import { reportError } from './errors.js'
import { Output } from './output.js'

export abstract class ZenithCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    debug: Flags.boolean({ summary: 'show stack traces of failures', helpGroup: 'GLOBAL' }),
  }

  protected readonly out = new Output()

  override async init(): Promise<void> {
    await super.init()
    setLockWaitReporter((holder, file) =>
      process.stderr.write(
        `waiting for the lock on ${file}: held by pid ${holder.pid} (${holder.command}) since ${holder.since}\n`,
      ),
    )
  }

  /** Human output; under --json oclif prints the value `run()` returns instead. */
  protected print(text: string): void {
    if (!this.jsonEnabled()) this.out.write(text)
  }

  protected get debugEnabled(): boolean {
    return this.argv.includes('--debug') || process.env.ZENITH_DEBUG === '1'
  }

  protected override async catch(err: Error): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err
    const r = reportError(err, { json: this.jsonEnabled(), debug: this.debugEnabled })
    ;(r.toStdout ? process.stdout : process.stderr).write(r.text)
    return this.exit(r.exitCode)
  }
}
