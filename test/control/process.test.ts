import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  freePort,
  isAlive,
  lastLogLines,
  PortBusyError,
  ProcessStartError,
  ProcessStopError,
  portInUse,
  readPidFile,
  type StartDetachedOptions,
  stalePid,
  startDetached,
  stopByPidFile,
} from '../../src/control/process.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-process-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Listens on the port given as its argument once started; `ignoreTerm` makes it shrug off SIGTERM. */
function serverScript(opts: { ignoreTerm?: boolean } = {}): string {
  return [
    "const net = require('node:net')",
    opts.ignoreTerm ? "process.on('SIGTERM', () => console.log('ignoring SIGTERM'))" : '',
    "console.log('starting on', process.argv[1])",
    'const server = net.createServer((c) => c.end())',
    "server.listen(Number(process.argv[1]), '127.0.0.1')",
  ].join('\n')
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function files(name: string): { pidFile: string; logFile: string } {
  const dir = mkdtempSync(path.join(root, `${name}-`))
  return { pidFile: path.join(dir, `${name}.pid`), logFile: path.join(dir, 'logs', `${name}.log`) }
}

async function startServer(
  name: string,
  opts: { ignoreTerm?: boolean } & Partial<StartDetachedOptions> = {},
): Promise<{ pid: number; alreadyRunning: boolean; port: number; pidFile: string; logFile: string }> {
  const port = await freePort()
  const paths = files(name)
  const started = await startDetached({
    command: process.execPath,
    args: ['-e', serverScript(opts), String(port)],
    ready: () => canConnect(port),
    name,
    ...paths,
    ...opts,
  })
  return { ...started, port, ...paths }
}

/** A pid that belonged to a process that has exited and been reaped. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', ''])
  expect(isAlive(pid!)).toBe(false)
  return pid!
}

describe('pid files', () => {
  it('reads a pid and treats missing, empty and garbled files as none', () => {
    const dir = mkdtempSync(path.join(root, 'pidfile-'))
    const file = path.join(dir, 'x.pid')
    expect(readPidFile(file)).toBeNull()
    expect(stalePid(file)).toBe(false)
    for (const garbled of ['', '\n', 'abc\n', '-5\n', '0\n', '12x\n', '1.5\n', '99999999999999999999\n']) {
      writeFileSync(file, garbled)
      expect(readPidFile(file), JSON.stringify(garbled)).toBeNull()
      expect(stalePid(file), JSON.stringify(garbled)).toBe(true)
    }
    writeFileSync(file, `${process.pid}\n`)
    expect(readPidFile(file)).toBe(process.pid)
    expect(stalePid(file)).toBe(false)
    // postmaster.pid style: more lines after the pid.
    writeFileSync(file, ` ${process.pid}\n/var/lib/data\n`)
    expect(readPidFile(file)).toBe(process.pid)
    writeFileSync(file, `${deadPid()}\n`)
    expect(stalePid(file)).toBe(true)
  })

  it('isAlive counts EPERM as alive', () => {
    expect(isAlive(process.pid)).toBe(true)
    expect(isAlive(deadPid())).toBe(false)
    // pid 1 belongs to root: when we are not root, signal 0 fails with EPERM, yet the process exists.
    expect(isAlive(1)).toBe(true)
  })
})

describe('lastLogLines', () => {
  it('gives the last non-empty lines, oldest first, from an offset, and none for a missing file', () => {
    const dir = mkdtempSync(path.join(root, 'log-'))
    const file = path.join(dir, 'x.log')
    expect(lastLogLines(file, 3)).toEqual([])
    writeFileSync(file, 'one\ntwo\n\nthree\r\nfour\n\n')
    expect(lastLogLines(file, 3)).toEqual(['two', 'three', 'four'])
    expect(lastLogLines(file, 10)).toEqual(['one', 'two', 'three', 'four'])
    expect(lastLogLines(file, 10, 'one\ntwo\n'.length)).toEqual(['three', 'four'])
  })

  it('reads only the end of a large log, without the line it starts in', () => {
    const dir = mkdtempSync(path.join(root, 'log-'))
    const file = path.join(dir, 'big.log')
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(40)}`)
    writeFileSync(file, `${lines.join('\n')}\n`)
    const tail = lastLogLines(file, 10_000)
    expect(tail.length).toBeLessThan(lines.length)
    expect(tail).toEqual(lines.slice(-tail.length))
    expect(lastLogLines(file, 2)).toEqual(lines.slice(-2))
  })
})

describe('startDetached and stopByPidFile', () => {
  it('starts a server once, finds it running on the next start, and stops it once', async () => {
    const server = await startServer('api')
    try {
      expect(server.alreadyRunning).toBe(false)
      expect(isAlive(server.pid)).toBe(true)
      expect(await canConnect(server.port)).toBe(true)
      expect(readFileSync(server.pidFile, 'utf8')).toBe(`${server.pid}\n`)
      expect(readFileSync(server.logFile, 'utf8')).toContain(`starting on ${server.port}`)
      expect(await portInUse('127.0.0.1', server.port)).toBe(true)

      let readyCalls = 0
      const again = await startDetached({
        command: process.execPath,
        args: ['-e', 'process.exit(1)'],
        pidFile: server.pidFile,
        logFile: server.logFile,
        name: 'api',
        ready: async () => {
          readyCalls++
          return true
        },
      })
      expect(again).toEqual({ pid: server.pid, alreadyRunning: true })
      expect(readyCalls).toBe(0)

      expect(await stopByPidFile({ pidFile: server.pidFile, name: 'api' })).toEqual({ wasRunning: true })
      expect(isAlive(server.pid)).toBe(false)
      expect(existsSync(server.pidFile)).toBe(false)
      // Not "the port refuses connections": other tests running in parallel may take the freed port.
      expect(await stopByPidFile({ pidFile: server.pidFile, name: 'api' })).toEqual({ wasRunning: false })
    } finally {
      await stopByPidFile({ pidFile: server.pidFile, name: 'api' })
    }
  })

  it('replaces a stale pid file', async () => {
    const paths = files('stale')
    const stale = deadPid()
    writeFileSync(paths.pidFile, `${stale}\n`)
    expect(stalePid(paths.pidFile)).toBe(true)
    const port = await freePort()
    try {
      const started = await startDetached({
        command: process.execPath,
        args: ['-e', serverScript(), String(port)],
        ready: () => canConnect(port),
        name: 'stale',
        ...paths,
      })
      expect(started.alreadyRunning).toBe(false)
      expect(started.pid).not.toBe(stale)
      expect(readPidFile(paths.pidFile)).toBe(started.pid)
      expect(stalePid(paths.pidFile)).toBe(false)
    } finally {
      await stopByPidFile({ pidFile: paths.pidFile, name: 'stale' })
    }
  })

  it('stopByPidFile removes stale and garbled pid files and reports nothing running', async () => {
    const { pidFile } = files('gone')
    writeFileSync(pidFile, `${deadPid()}\n`)
    expect(await stopByPidFile({ pidFile, name: 'gone' })).toEqual({ wasRunning: false })
    expect(existsSync(pidFile)).toBe(false)
    writeFileSync(pidFile, 'not a pid')
    expect(await stopByPidFile({ pidFile, name: 'gone' })).toEqual({ wasRunning: false })
    expect(existsSync(pidFile)).toBe(false)
  })

  it('names the log file and the last log line when the server exits during start', async () => {
    const paths = files('broken')
    mkdirSync(path.dirname(paths.logFile), { recursive: true })
    writeFileSync(paths.logFile, 'a line from an earlier run\n')
    const start = startDetached({
      command: process.execPath,
      args: [
        '-e',
        "console.log('reading config'); console.error('fatal: config file missing\\n'); process.exit(3)",
      ],
      ready: async () => false,
      name: 'broken',
      ...paths,
    })
    await expect(start).rejects.toThrow(ProcessStartError)
    // The log file travels with the error, for the CLI to name it on a line of its own.
    await expect(start).rejects.toMatchObject({
      message: 'broken failed to start: exited with code 3: fatal: config file missing',
      logFile: paths.logFile,
    })
    expect(existsSync(paths.pidFile)).toBe(false)
    // The log is appended to, never truncated.
    expect(readFileSync(paths.logFile, 'utf8')).toMatch(/^a line from an earlier run\nreading config\n/)

    // A run that logs nothing must not be blamed on an earlier run's last line.
    const silent = startDetached({
      command: process.execPath,
      args: ['-e', 'process.exit(4)'],
      ready: async () => false,
      name: 'broken',
      ...paths,
    })
    await expect(silent).rejects.toThrow('broken failed to start: exited with code 4')
  })

  it('kills a server that is not ready in time and removes its pid file', async () => {
    const paths = files('slow')
    let pid: number | undefined
    const start = startDetached({
      command: process.execPath,
      args: ['-e', "console.log('warming up'); setInterval(() => {}, 1000)"],
      ready: async () => {
        pid ??= readPidFile(paths.pidFile) ?? undefined
        return false
      },
      timeoutMs: 400,
      name: 'slow',
      ...paths,
    })
    await expect(start).rejects.toThrow('slow failed to start: not ready after 400 ms: warming up')
    expect(pid).toBeGreaterThan(0)
    expect(isAlive(pid!)).toBe(false)
    expect(existsSync(paths.pidFile)).toBe(false)
  })

  it('reports a command that cannot be spawned', async () => {
    const paths = files('missing')
    const start = startDetached({
      command: path.join(root, 'no-such-binary'),
      args: [],
      ready: async () => true,
      name: 'missing',
      ...paths,
    })
    await expect(start).rejects.toThrow(/^missing failed to start: .*ENOENT/)
    expect(existsSync(paths.pidFile)).toBe(false)
  })

  it('sends SIGKILL to a server that ignores SIGTERM, unless told not to', async () => {
    const server = await startServer('stubborn', { ignoreTerm: true })
    try {
      await expect(
        stopByPidFile({ pidFile: server.pidFile, name: 'stubborn', timeoutMs: 300, killAfterTimeout: false }),
      ).rejects.toThrow(ProcessStopError)
      expect(isAlive(server.pid)).toBe(true)
      expect(readPidFile(server.pidFile)).toBe(server.pid)

      const before = Date.now()
      expect(await stopByPidFile({ pidFile: server.pidFile, name: 'stubborn', timeoutMs: 300 })).toEqual({
        wasRunning: true,
      })
      expect(Date.now() - before).toBeGreaterThanOrEqual(300)
      expect(isAlive(server.pid)).toBe(false)
      expect(existsSync(server.pidFile)).toBe(false)
      expect(readFileSync(server.logFile, 'utf8')).toContain('ignoring SIGTERM')
    } finally {
      if (isAlive(server.pid)) process.kill(server.pid, 'SIGKILL')
    }
  })
})

describe('ports', () => {
  it('portInUse sees a listening port and freePort hands out one that is free', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    expect(await portInUse('127.0.0.1', port)).toBe(false)
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    try {
      expect(await portInUse('127.0.0.1', port)).toBe(true)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    expect(await portInUse('127.0.0.1', port)).toBe(false)
    expect(new PortBusyError('127.0.0.1', port).message).toBe(`port ${port} on 127.0.0.1 is already in use`)
    expect(new PortBusyError('127.0.0.1', port).name).toBe('PortBusyError')
    expect(new PortBusyError('127.0.0.1', port)).toMatchObject({ host: '127.0.0.1', port })
    expect(new PortBusyError('port 5 is taken; pick another').message).toBe('port 5 is taken; pick another')
  })
})

describe('freePort', () => {
  it('never hands out the same port twice in one process', async () => {
    // 1000 random picks from ~22,000 ports would repeat one with near certainty (birthday bound).
    const ports = []
    for (let i = 0; i < 1000; i++) ports.push(await freePort())
    expect(new Set(ports).size).toBe(ports.length)
  })
})
