/**
 * The base of every zenith command: failures reach the user as one line on stderr with a non-zero exit
 * code, and never as a stack trace unless `--debug` is given. Errors of zenith's own classes (each sets
 * its own `name`) and oclif's usage errors are expected outcomes of bad input; anything else is a bug,
 * reported in one line too, with a hint that `--debug` shows where it happened.
 */
import { Command, Errors, Flags } from '@oclif/core'

const BUG_NAMES = new Set([
  'Error',
  'TypeError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'AssertionError',
])

export abstract class ZenithCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({ summary: 'show stack traces of failures', helpGroup: 'GLOBAL' }),
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err
    const usage = err instanceof Errors.CLIError
    const debug = this.argv.includes('--debug') || process.env.ZENITH_DEBUG === '1'
    if (debug && !usage) process.stderr.write(`${err.stack ?? err.message}\n`)
    const bug = !usage && BUG_NAMES.has(err.name)
    process.stderr.write(
      `Error: ${oneLine(err.message)}${bug && !debug ? ' (run with --debug for details)' : ''}\n`,
    )
    return this.exit(usage ? (err.oclif?.exit ?? 2) : 1)
  }
}

/** oclif's usage errors span several lines; a user (or a script) wants one. */
function oneLine(message: string): string {
  return message
    .split('\n')
    .map((l) => l.replace(/^[\s›]+/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('See more help with') && l !== 'The following error occurred:')
    .join(': ')
    .replace(/:\s*:/g, ':')
}
