/** runPageserver in this process: the configured log level, and a config it cannot use, in its log. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { pageserverConfigFile, pageserverLogFile, pageserverPidFile } from '../../src/control/layout.js'
import { pageserverStatus, runPageserver } from '../../src/control/pageserver-process.js'
import { freePort } from '../../src/control/process.js'
import type { LogLevel } from '../../src/lib/log.js'
import { DEFAULT_PAGESERVER_CONFIG, savePageserverConfig } from '../../src/pageserver/config.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-psproc-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function repoWith(logLevel: string): Promise<string> {
  const repo = mkdtempSync(path.join(root, 'repo-'))
  mkdirSync(path.join(repo, 'pageserver'))
  savePageserverConfig(pageserverConfigFile(repo, 1), {
    ...DEFAULT_PAGESERVER_CONFIG,
    listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
    listenPgAddr: { host: '127.0.0.1', port: await freePort() },
    // Rendered as given, so that a value the parser refuses can be written too.
    logLevel: logLevel as LogLevel,
  })
  return repo
}

describe('runPageserver', () => {
  it('logs at the level of pageserver.toml from its first line on', async () => {
    const quiet = await repoWith('warn')
    await (await runPageserver(quiet, 1, { logToStdout: false })).stop()
    expect(readFileSync(pageserverLogFile(quiet, 1), 'utf8')).toBe('')

    const chatty = await repoWith('info')
    await (await runPageserver(chatty, 1, { logToStdout: false })).stop()
    const lines = readFileSync(pageserverLogFile(chatty, 1), 'utf8').trimEnd().split('\n')
    expect(lines.map((l) => /^\S+Z INFO {2}(pageserver \w+)/.exec(l)?.[1])).toEqual([
      'pageserver started',
      'pageserver stopping',
      'pageserver stopped',
    ])
    // A clean stop takes the pid file along: the status is stopped, not died.
    expect(existsSync(pageserverPidFile(chatty, 1))).toBe(false)
    const s = await pageserverStatus(chatty, 1)
    expect(s.state).toBe('stopped')
    expect(s.last_log_lines).toBeUndefined()
  })

  it('logs a log_level it cannot use, at the default level, and does not start', async () => {
    const repo = await repoWith('verbose')
    await expect(runPageserver(repo, 1, { logToStdout: false })).rejects.toThrow(
      /log_level must be one of debug, info, warn, error, got "verbose"/,
    )
    expect(readFileSync(pageserverLogFile(repo, 1), 'utf8')).toMatch(
      /^\S+Z ERROR pageserver failed to start error=".*log_level must be one of debug, info, warn, error, got \\"verbose\\""\n$/,
    )
    expect(existsSync(pageserverPidFile(repo, 1))).toBe(false)
  })
})
