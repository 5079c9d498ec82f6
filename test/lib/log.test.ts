import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger, formatLogLine, type LogLevel } from '../../src/lib/log.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function capture(level?: LogLevel) {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  return { log: createLogger({ stream }, level), lines }
}

const logEveryLevel = (log: ReturnType<typeof createLogger>) => {
  for (const l of ['debug', 'info', 'warn', 'error'] as const) log(l, `a ${l} line`)
}

describe('createLogger', () => {
  it('drops the lines below its level, info by default', () => {
    const levelsOf = (lines: string[]) => lines.map((l) => l.split(' ')[1])
    const dflt = capture()
    logEveryLevel(dflt.log)
    expect(levelsOf(dflt.lines)).toEqual(['INFO', 'WARN', 'ERROR'])
    const debug = capture('debug')
    logEveryLevel(debug.log)
    expect(levelsOf(debug.lines)).toEqual(['DEBUG', 'INFO', 'WARN', 'ERROR'])
    const warn = capture('warn')
    logEveryLevel(warn.log)
    expect(levelsOf(warn.lines)).toEqual(['WARN', 'ERROR'])
    const error = capture('error')
    logEveryLevel(error.log)
    expect(levelsOf(error.lines)).toEqual(['ERROR'])
  })

  it('takes a new level while it runs', () => {
    const { log, lines } = capture('error')
    log('info', 'dropped')
    log.level = 'debug'
    log('debug', 'kept')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^\S+Z DEBUG kept\n$/)
  })

  it('appends filtered lines to a file, all written once closed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-log-'))
    dirs.push(dir)
    const file = path.join(dir, 'x.log')
    const log = createLogger({ file }, 'warn')
    logEveryLevel(log)
    await log.close()
    const text = readFileSync(file, 'utf8')
    expect(text).not.toMatch(/debug line|info line/)
    expect(text).toMatch(/WARN {2}a warn line\n.* ERROR a error line\n$/)
  })
})

describe('formatLogLine', () => {
  it('keeps a multi-line stack on one line, quoted', () => {
    const line = formatLogLine('error', 'boom', { stack: 'Error: x\n    at f (a.js:1:2)' }, new Date(0))
    expect(line).toBe('1970-01-01T00:00:00.000Z ERROR boom stack="Error: x\\n    at f (a.js:1:2)"\n')
  })
})
