/**
 * What every command shares, checked on the built CLI: --json and examples on each, errors as JSON under
 * --json, a usage error's exit code, and a suggestion for a mistyped command.
 */
import path from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { Config } from '@oclif/core'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { BIN, runZenith } from '../harness/cli.js'
import { withTempDir } from '../harness/postgres.js'

describe('every zenith command', () => {
  it('has --json and help examples', async () => {
    const config = await Config.load(path.dirname(path.dirname(BIN)))
    const ours = config.commands.filter((c) => c.pluginName === 'zenith')
    expect(ours.length).toBeGreaterThanOrEqual(19)
    for (const c of ours) {
      expect(Object.keys(c.flags), c.id).toContain('json')
      expect(c.examples?.length ?? 0, `${c.id} has no examples`).toBeGreaterThan(0)
    }
  })

  it('reports a failure under --json as one JSON object on stdout, with the exit code of the text form', () =>
    withTempDir(async (dir) => {
      const args = ['pg', 'start', 'main', '--repo-dir', path.join(dir, 'none')]
      const text = await runZenith(args)
      const json = await runZenith([...args, '--json'])
      expect(text.exitCode).toBe(1)
      expect(text.stderr).toMatch(/^Error: .*none.*\n/)
      expect(json.exitCode).toBe(1)
      const body = JSON.parse(json.stdout) as { error: { kind: string; message: string } }
      expect(Object.keys(body)).toEqual(['error'])
      expect(body.error.kind).toMatch(/^(not_found|user_input)$/)
      expect(body.error.message).toBe(text.stderr.split('\n')[0].replace(/^Error: /, ''))
    }))

  it('exits 2 on a usage error, in one line', async () => {
    const r = await runZenith(['timeline', 'branch', '--no-such-flag'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/^Error: Nonexistent flag: --no-such-flag\nHint: see --help for the usage$/)
    const j = await runZenith(['timeline', 'branch', '--no-such-flag', '--json'])
    expect(j.exitCode).toBe(2)
    expect(JSON.parse(j.stdout).error.kind).toBe('user_input')
  })

  it('suggests pg list for pg lst', async () => {
    // The suggestion is a prompt, so it needs a terminal: script(1) gives the CLI one; "n" declines.
    const r = await execa('script', ['-qfec', `node ${BIN} pg lst`, '/dev/null'], {
      input: 'n\n',
      reject: false,
      env: { NO_COLOR: '1' },
      timeout: 30_000,
    })
    const seen = stripVTControlCharacters(r.stdout)
    expect(seen).toMatch(/pg lst is not a zenith command/)
    expect(seen).toMatch(/Did you mean pg list\?/)
  })
})
