import { Errors } from '@oclif/core'
import { describe, expect, it } from 'vitest'
import { reportError } from '../../src/cli/errors.js'
import { ZenithError } from '../../src/lib/errors.js'
import { LsnError } from '../../src/postgres/lsn.js'

describe('the CLI error report', () => {
  it('prints a ZenithError as one Error line, its hint and log file, exit 1', () => {
    const err = new ZenithError('the pageserver did not start', {
      kind: 'external',
      hint: 'look at its log',
      logFile: '/r/pageserver.log',
    })
    expect(reportError(err, { json: false, debug: false })).toEqual({
      exitCode: 1,
      text: 'Error: the pageserver did not start\nHint: look at its log\nLog: /r/pageserver.log\n',
      toStdout: false,
    })
  })

  it('keeps the kind a subclass declares', () => {
    const r = reportError(new LsnError('invalid LSN "x"'), { json: true, debug: false })
    expect(JSON.parse(r.text)).toEqual({ error: { kind: 'user_input', message: 'invalid LSN "x"' } })
    expect(r).toMatchObject({ exitCode: 1, toStdout: true })
  })

  it('gives usage errors exit 2, on one line', () => {
    const usage = new Errors.CLIError('Nonexistent flag: --bogus\nSee more help with --help')
    const r = reportError(usage, { json: false, debug: false })
    expect(r.exitCode).toBe(2)
    expect(r.text).toBe('Error: Nonexistent flag: --bogus\nHint: see --help for the usage\n')
    const j = JSON.parse(reportError(usage, { json: true, debug: false }).text)
    expect(j.error).toMatchObject({ kind: 'user_input', message: 'Nonexistent flag: --bogus' })
  })

  it('reports anything else as a bug, with the stack only under --debug', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')")
    const plain = reportError(bug, { json: false, debug: false })
    expect(plain.exitCode).toBe(1)
    expect(plain.text).toBe(
      "Error: this is a bug in zenith: Cannot read properties of undefined (reading 'x')\nrun again with --debug to see where it happened\n",
    )
    const debug = reportError(bug, { json: false, debug: true })
    expect(debug.text).toMatch(/^Error: this is a bug in zenith: .*\nTypeError: .*\n\s+at /)
    const json = JSON.parse(reportError(bug, { json: true, debug: false }).text)
    expect(json).toEqual({
      error: { kind: 'bug', message: "Cannot read properties of undefined (reading 'x')" },
    })
  })
})
