/**
 * Supervising detached server processes through pid files, for a control plane whose CLI exits while the
 * servers it started keep running: a later invocation finds them again by their pid file.
 *
 *     readPidFile(file)          pid or null (missing, empty or garbled file)
 *     isAlive(pid)               signal 0 reaches it (EPERM counts: the process exists); zombies are dead
 *                                (lib/pid.ts, re-exported)
 *     stalePid(file)             the pid file names a process that is gone
 *     lastLogLines(file, n)      the log's last n non-empty lines, for a post-mortem
 *     startDetached(opts)        { pid, alreadyRunning }: idempotent; waits until opts.ready() holds
 *     stopByPidFile(opts)        { wasRunning }: idempotent; signal, wait, SIGKILL after the timeout
 *     portInUse(host, port)      something listens there already
 *     freePort()                 a port on 127.0.0.1 that was free a moment ago
 *     PortBusyError(host, port)  "port <n> on <host> is already in use", for callers that checked portInUse
 *
 * A pid file holds the pid and a newline and is replaced atomically, so a reader never sees half a pid.
 * Pids are reused: a pid file left over from before a reboot may name an unrelated process, which these
 * helpers cannot tell apart from the server; callers that can ask the server who it is should do so.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { isAlive } from '../lib/pid.js'

export { isAlive }

const POLL_MS = 50
const DEFAULT_START_TIMEOUT_MS = 30_000
/** After a failed start or a SIGKILL, how long to wait for the process to be gone before giving up. */
const KILL_WAIT_MS = 5_000
const MAX_LOG_LINE_LENGTH = 300
/** How much of a log's end lastLogLines reads: a log grows without bound, its last lines are short. */
const LOG_TAIL_BYTES = 64 * 1024

export class ProcessStartError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'ProcessStartError'
}

export class ProcessStopError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'ProcessStopError'
}

/** `new PortBusyError(host, port)` says just that; callers with advice to add pass their own message. */
export class PortBusyError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'PortBusyError'
  readonly host?: string
  readonly port?: number

  constructor(host: string, port: number)
  constructor(message: string)
  constructor(hostOrMessage: string, port?: number) {
    super(port === undefined ? hostOrMessage : `port ${port} on ${hostOrMessage} is already in use`)
    if (port !== undefined) {
      this.host = hostOrMessage
      this.port = port
    }
  }
}

export function readPidFile(file: string): number | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return null
  }
  const first = text.split('\n')[0].trim()
  if (!/^\d+$/.test(first)) return null
  const pid = Number(first)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null
}

export function stalePid(file: string): boolean {
  if (!existsSync(file)) return false
  const pid = readPidFile(file)
  return pid === null || !isAlive(pid)
}

export interface StartDetachedOptions {
  command: string
  args: string[]
  pidFile: string
  /** stdout and stderr are appended here; the file outlives the process, for post-mortems. */
  logFile: string
  /** Added to our environment. */
  env?: Record<string, string>
  cwd?: string
  /** True once the server serves, e.g. a TCP connect succeeds; a throw counts as not yet. */
  ready: () => Promise<boolean>
  timeoutMs?: number
  /** What the server is called in messages, e.g. "pageserver". */
  name: string
}

export async function startDetached(
  opts: StartDetachedOptions,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const existing = readPidFile(opts.pidFile)
  if (existing !== null && isAlive(existing)) return { pid: existing, alreadyRunning: true }
  rmSync(opts.pidFile, { force: true })

  mkdirSync(path.dirname(opts.logFile), { recursive: true })
  mkdirSync(path.dirname(opts.pidFile), { recursive: true })
  // Only what this attempt logged can explain its failure: the file keeps earlier runs' output too.
  const logFd = openSync(opts.logFile, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o644)
  let logStart: number
  let child: ChildProcess
  try {
    logStart = fstatSync(logFd).size
    // detached: its own session and process group, so that it survives our exit and terminal signals.
    child = spawn(opts.command, opts.args, {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: opts.env ? { ...process.env, ...opts.env } : undefined,
      cwd: opts.cwd,
    })
  } finally {
    closeSync(logFd)
  }

  let exited: string | undefined
  child.once('exit', (code, signal) => {
    exited = signal ? `killed by ${signal}` : `exited with code ${code}`
  })
  // Without a listener an 'error' event (a failed kill, say) would crash us.
  const spawnError = new Promise<Error>((resolve) => child.on('error', resolve))
  if (child.pid === undefined) {
    const err = await spawnError
    throw new ProcessStartError(`${opts.name} failed to start: ${err.message}`.replaceAll('\n', ' '), {
      logFile: opts.logFile,
    })
  }
  const pid = child.pid
  child.unref()

  const fail = async (why: string): Promise<never> => {
    await killGroup(pid, () => exited !== undefined)
    rmSync(opts.pidFile, { force: true })
    const logLine = lastLogLine(opts.logFile, logStart)
    const reason = logLine ? `${why}: ${logLine}` : why
    throw new ProcessStartError(`${opts.name} failed to start: ${reason}`, { logFile: opts.logFile })
  }

  try {
    writeFileDurable(opts.pidFile, `${pid}\n`)
  } catch (err) {
    return fail(`could not write ${opts.pidFile}: ${(err as Error).message}`)
  }

  const timeoutMs = opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ready = await opts.ready().catch(() => false)
    // Checked after ready(): another process on the same port must not pass for the one that just died.
    if (exited !== undefined) return fail(exited)
    if (ready) return { pid, alreadyRunning: false }
    if (Date.now() >= deadline) return fail(`not ready after ${timeoutMs} ms`)
    await sleep(POLL_MS)
  }
}

/** SIGTERM, then SIGKILL, to the child's whole process group: a wrapper script's children go too. */
async function killGroup(pid: number, hasExited: () => boolean): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal)
    } catch {
      // Already gone.
    }
  }
  const gone = () => hasExited() || !isAlive(pid)
  signalGroup('SIGTERM')
  if (await waitFor(gone, KILL_WAIT_MS / 2)) return
  signalGroup('SIGKILL')
  await waitFor(gone, KILL_WAIT_MS)
}

/** Polls `condition` every 50 ms until it holds (true) or `timeoutMs` has passed (false). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return true
    if (Date.now() >= deadline) return false
    await sleep(POLL_MS)
  }
}

/** The last non-empty line the log got from `offset` on, cut to a length that fits a one-line message. */
function lastLogLine(file: string, offset: number): string | undefined {
  const [line] = lastLogLines(file, 1, offset)
  if (line === undefined) return undefined
  return line.length > MAX_LOG_LINE_LENGTH ? `${line.slice(0, MAX_LOG_LINE_LENGTH)}...` : line
}

/**
 * The last `count` non-empty lines of a log, from `offset` on, oldest first; none when the file cannot be
 * read. Only the last 64 KiB are read, so very long lines may leave fewer.
 */
export function lastLogLines(file: string, count: number, offset = 0): string[] {
  let text: string
  try {
    const fd = openSync(file, 'r')
    try {
      const size = fstatSync(fd).size
      const start = Math.min(size, Math.max(offset, size - LOG_TAIL_BYTES))
      const buf = Buffer.alloc(size - start)
      const n = readSync(fd, buf, 0, buf.length, start)
      text = buf.subarray(0, n).toString('utf8')
      // Started inside a line: its head is not in the buffer.
      if (start > offset) text = text.slice(text.indexOf('\n') + 1)
    } finally {
      closeSync(fd)
    }
  } catch {
    return []
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-count)
}

export interface StopByPidFileOptions {
  pidFile: string
  name: string
  signal?: NodeJS.Signals
  timeoutMs?: number
  /** SIGKILL when the signal did not end the process in time; otherwise that is a ProcessStopError. */
  killAfterTimeout?: boolean
}

export async function stopByPidFile(opts: StopByPidFileOptions): Promise<{ wasRunning: boolean }> {
  const { pidFile, name, signal = 'SIGTERM', timeoutMs = 10_000, killAfterTimeout = true } = opts
  const pid = readPidFile(pidFile)
  if (pid === null || !isAlive(pid)) {
    rmSync(pidFile, { force: true })
    return { wasRunning: false }
  }
  if (!sendSignal(pid, signal)) {
    rmSync(pidFile, { force: true })
    return { wasRunning: false }
  }
  if (!(await waitFor(() => !isAlive(pid), timeoutMs))) {
    if (!killAfterTimeout) {
      throw new ProcessStopError(`${name} (pid ${pid}) did not exit within ${timeoutMs} ms of ${signal}`)
    }
    sendSignal(pid, 'SIGKILL')
    if (!(await waitFor(() => !isAlive(pid), KILL_WAIT_MS))) {
      throw new ProcessStopError(`${name} (pid ${pid}) did not exit even after SIGKILL`)
    }
  }
  rmSync(pidFile, { force: true })
  return { wasRunning: true }
}

/** False when the process was already gone. */
function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/** Whether binding `host:port` fails with EADDRINUSE; other bind errors (EACCES, ...) reject. */
export async function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(true)
      else reject(err)
    })
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(false)))
  })
}

/**
 * Where the kernel takes ports for outgoing connections from (Linux: ip_local_port_range); a server port
 * chosen inside it can be taken by any client's connection before the server binds it.
 */
function ephemeralPorts(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number)
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo, hi]
  } catch {
    // Not Linux: the IANA dynamic range.
  }
  return [49152, 65535]
}

const handedOut = new Set<number>()

/**
 * A TCP port free on 127.0.0.1 now, outside the ephemeral range so that no outgoing connection takes it
 * meanwhile; another process may still bind it before we do. A port is handed out once per process:
 * callers that pick several before binding any (init's ports, a test's cluster) would otherwise be
 * given the same free port twice now and then.
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralPorts()
  const [from, to] = lo > 12_000 ? [10_000, lo - 1] : [50_000, 65_000]
  for (;;) {
    const port = from + Math.floor(Math.random() * (to - from + 1))
    if (handedOut.has(port) || (await portInUse('127.0.0.1', port))) continue
    handedOut.add(port)
    return port
  }
}
