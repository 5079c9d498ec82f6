import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { afterEach, describe, expect, it } from 'vitest'
import { ZenithError } from '../../src/lib/errors.js'
import {
  DEFAULT_PAGESERVER_CONFIG,
  loadPageserverConfig,
  PageserverConfigError,
  parsePageserverConfig,
  renderPageserverConfig,
} from '../../src/pageserver/config.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('pageserver.toml log_level', () => {
  it('defaults to info and takes each level', () => {
    expect(parsePageserverConfig({}).logLevel).toBe('info')
    for (const level of ['debug', 'info', 'warn', 'error'])
      expect(parsePageserverConfig({ log_level: level }).logLevel).toBe(level)
  })

  it('is written by the renderer and read back', () => {
    const text = renderPageserverConfig({ ...DEFAULT_PAGESERVER_CONFIG, logLevel: 'debug' })
    expect(text).toContain('log_level = "debug"\n')
    expect(parsePageserverConfig(parseToml(text)).logLevel).toBe('debug')
  })

  it('refuses a bad value in one line naming the setting, the file and the valid values', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-pscfg-'))
    dirs.push(dir)
    const file = path.join(dir, 'pageserver.toml')
    for (const [value, shown] of [
      ['"verbose"', '"verbose"'],
      ['"INFO"', '"INFO"'],
      ['3', '3'],
    ]) {
      writeFileSync(file, `log_level = ${value}\n`)
      let err: unknown
      try {
        loadPageserverConfig(file)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(PageserverConfigError)
      expect(err).toBeInstanceOf(ZenithError)
      expect((err as ZenithError).kind).toBe('user_input')
      expect((err as Error).message).toBe(
        `${file}: log_level must be one of debug, info, warn, error, got ${shown}`,
      )
    }
  })
})
