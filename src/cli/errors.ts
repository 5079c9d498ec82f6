/**
 * How a failure reaches the user of the CLI; the only place that decides it. A ZenithError prints as one
 * line `Error: <message>` with its hint (and log file) on the next, exit 1. oclif's own parse errors (an
 * unknown flag, a missing argument) are usage errors: the same line, exit 2. Anything else is a bug: it
 * says so, and `--debug` shows the stack. Under `--json` the same facts go to stdout as one JSON object
 * `{"error": {"kind", "message", "hint"}}`, with the same exit code, so a script reads results and
 * failures from one place.
 */
import { Errors } from '@oclif/core'
import { asZenithError, errorJson, ZenithError } from '../lib/errors.js'

export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export interface ReportedError {
  exitCode: number
  /** What goes to stderr (text) or stdout (--json), ending in a newline. */
  text: string
  toStdout: boolean
}

export function reportError(err: unknown, opts: { json: boolean; debug: boolean }): ReportedError {
  const usage = err instanceof Errors.CLIError && !(err instanceof ZenithError)
  const e = usage
    ? new ZenithError(oneLine((err as Error).message), {
        kind: 'user_input',
        hint: 'see --help for the usage',
      })
    : asZenithError(err)
  const exitCode = usage ? EXIT_USAGE : EXIT_FAILURE
  if (opts.json) {
    const json = errorJson(e)
    if (e.kind === 'bug' && opts.debug && e.stack) Object.assign(json.error, { stack: e.stack })
    return { exitCode, text: `${JSON.stringify(json, null, 2)}\n`, toStdout: true }
  }
  const lines = [`Error: ${e.kind === 'bug' ? 'this is a bug in zenith: ' : ''}${oneLine(e.message)}`]
  if (e.kind === 'bug') {
    lines.push(opts.debug && e.stack ? e.stack : 'run again with --debug to see where it happened')
  } else if (opts.debug && e.stack) {
    lines.push(e.stack)
  }
  if (e.hint) lines.push(`Hint: ${e.hint}`)
  if (e.logFile) lines.push(`Log: ${e.logFile}`)
  return { exitCode, text: `${lines.join('\n')}\n`, toStdout: false }
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
