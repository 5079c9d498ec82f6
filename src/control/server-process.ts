/**
 * The servers of the local cluster (the pageserver, each safekeeper) as the control plane runs them: a
 * detached child (`zenith <server> run`, its stdout and stderr appended to its log file, found again
 * through its pid file), or in this very process (`zenith start --embedded`, `zenith <server> run`).
 *
 *     serverState(files)        running / stopped / died, with a dead server's last log lines
 *     checkPortsFree(...)       every listen port is free, else a PortBusyError naming the config file
 *     startServer(opts)         { pid, alreadyRunning }: launches `zenith <args>` detached, waits for ready()
 *     runServer(opts)           runs it here: claims the pid file, logs crashes, stop() releases both
 *
 * Only a clean stop removes the pid file. A server that was killed or crashed leaves it behind, naming
 * a pid that is gone: that is how `serverState` tells "died" from "stopped", and why a crash is logged
 * (with its stack) before the process exits.
 */

import { existsSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { HostPort } from '../lib/host-port.js'
import { createLogger, type Logger } from '../lib/log.js'
import { packageRoot } from './package-root.js'
import {
  isAlive,
  lastLogLines,
  PortBusyError,
  portInUse,
  readPidFile,
  stalePid,
  startDetached,
} from './process.js'

export class ServerStateError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'ServerStateError'
}

/** Where a server keeps what outlives it, and what it is called in messages ("pageserver", "safekeeper 2"). */
export interface ServerFiles {
  name: string
  pidFile: string
  logFile: string
}

/** How many of a dead server's last log lines its status shows. */
const DIED_LOG_LINES = 10

export interface ServerState {
  /** `died`: not running, yet nothing stopped it cleanly (killed, crashed). */
  state: 'running' | 'stopped' | 'died'
  running: boolean
  pid: number | null
  log_file: string
  /** Only when it died: the end of its log, oldest first, which should say why. */
  last_log_lines?: string[]
}

export function serverState(files: ServerFiles): ServerState {
  const pid = readPidFile(files.pidFile)
  const running = pid !== null && isAlive(pid)
  const died = !running && stalePid(files.pidFile)
  return {
    state: running ? 'running' : died ? 'died' : 'stopped',
    running,
    pid: running ? pid : null,
    log_file: files.logFile,
    ...(died ? { last_log_lines: lastLogLines(files.logFile, DIED_LOG_LINES) } : {}),
  }
}

/** A port a server listens on: `what` names it in the error ("HTTP API"). */
export interface ListenPort {
  what: string
  addr: HostPort
}

export async function checkPortsFree(name: string, ports: readonly ListenPort[], configFile: string) {
  for (const { what, addr } of ports) {
    if (await portInUse(addr.host, addr.port)) {
      throw new PortBusyError(
        `${name} ${what} port ${addr.port} on ${addr.host} is already in use; change it in ${configFile}`,
      )
    }
  }
}

/** How to run `zenith` itself again: the built CLI, or the sources through tsx when we run from them. */
function zenithArgv(): string[] {
  const bin = path.join(packageRoot(), 'bin')
  if (import.meta.url.endsWith('.ts')) return ['--import', 'tsx', path.join(bin, 'dev.js')]
  return [path.join(bin, 'run.js')]
}

/**
 * What a server's environment adds to ours, to keep its address space within the 2 GiB RLIMIT_AS zenith
 * must run under; a user's own setting is kept. Measured on a pageserver running pgbench -i -s 10:
 * - lz4-napi carries mimalloc, which reserves its arenas 1 GiB at a time: two of them took the pageserver
 *   from 1.27 to 3.27 GiB, and under the limit it died ("memory allocation of 24 bytes failed"). 64 MiB
 *   at a time (the value is in KiB).
 * - glibc's malloc gives threads that contend for it arenas of their own, up to 8 per core, each reserving
 *   64 MiB: an idle safekeeper held 6 (380 MiB of its 1.16 GiB); two layer workers added 443 MiB with the
 *   default and 60 MiB with 2.
 */
function serverEnv(): Record<string, string> {
  return {
    MIMALLOC_ARENA_RESERVE: process.env.MIMALLOC_ARENA_RESERVE ?? String(64 * 1024),
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  }
}

export interface StartServerOptions extends ServerFiles {
  /** The zenith command line that runs the server in the foreground, e.g. `pageserver run --repo-dir …`. */
  zenithArgs: string[]
  ports: readonly ListenPort[]
  /** Named in the message when a port is taken: where to change it. */
  configFile: string
  ready: () => Promise<boolean>
  timeoutMs: number
}

/** Starts the server as a detached process; a running one is left alone. */
export async function startServer(
  opts: StartServerOptions,
): Promise<{ pid: number; alreadyRunning: boolean }> {
  const existing = readPidFile(opts.pidFile)
  if (existing !== null && isAlive(existing)) return { pid: existing, alreadyRunning: true }
  await checkPortsFree(opts.name, opts.ports, opts.configFile)
  return startDetached({
    command: process.execPath,
    args: [...zenithArgv(), ...opts.zenithArgs],
    pidFile: opts.pidFile,
    logFile: opts.logFile,
    env: serverEnv(),
    ready: opts.ready,
    timeoutMs: opts.timeoutMs,
    name: opts.name,
  })
}

/**
 * The logs of the servers running in this process. An uncaught exception or unhandled rejection cannot
 * be told to belong to one of them (`zenith start --embedded` runs several), so it goes to every log as
 * its last line (level ERROR, the stack as a field) and the process exits with code 1 once all are
 * closed, instead of a Node trace on stderr that an embedded server's log never sees.
 */
const crashLogs = new Set<Logger>()
let crashed = false

const crashHandler = (what: string) => (err: unknown) => {
  // Closing a log can fail in turn; the first failure is the one that explains the crash.
  if (crashed) return
  crashed = true
  for (const log of crashLogs) {
    log('error', what, {
      error: err instanceof Error ? err.message : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    })
  }
  void Promise.allSettled([...crashLogs].map((l) => l.close())).finally(() => process.exit(1))
}
const onException = crashHandler('uncaught exception')
const onRejection = crashHandler('unhandled rejection')

/** Returns the function that takes the log off the list again. */
function logCrashesTo(log: Logger): () => void {
  if (crashLogs.size === 0) {
    process.on('uncaughtException', onException)
    process.on('unhandledRejection', onRejection)
  }
  crashLogs.add(log)
  return () => {
    crashLogs.delete(log)
    if (crashLogs.size === 0) {
      process.off('uncaughtException', onException)
      process.off('unhandledRejection', onRejection)
    }
  }
}

export interface RunningServer<S> {
  server: S
  /** Stops the server and releases the pid file and the log. */
  stop(): Promise<void>
}

export interface RunServerOptions<S> extends ServerFiles {
  /** Logs to stdout when that is the log file (a detached start), else appends to the log file. */
  logToStdout: boolean
  /**
   * Starts the server with this log. It reads its config itself, so that its log level applies from the
   * first line on, and a config that cannot be read is still logged, at the default level.
   */
  start: (log: Logger) => Promise<S & { stop(): Promise<void> }>
}

/**
 * Runs a server in this process and claims its pid file, so `zenith status` and `zenith stop` from
 * another shell find it.
 */
export async function runServer<S>(opts: RunServerOptions<S>): Promise<RunningServer<S>> {
  const other = readPidFile(opts.pidFile)
  if (other !== null && other !== process.pid && isAlive(other)) {
    throw new ServerStateError(`${opts.name} is already running (pid ${other})`, {
      hint: 'stop it with `zenith stop`',
    })
  }
  const log = opts.logToStdout
    ? createLogger({ stream: process.stdout })
    : createLogger({ file: opts.logFile })
  const forgetLog = logCrashesTo(log)
  let server: S & { stop(): Promise<void> }
  try {
    server = await opts.start(log)
  } catch (err) {
    log('error', `${opts.name} failed to start`, { error: (err as Error).message })
    forgetLog()
    await log.close()
    throw err
  }
  writeFileDurable(opts.pidFile, `${process.pid}\n`)
  return {
    server,
    stop: async () => {
      await server.stop()
      if (existsSync(opts.pidFile) && readFileSync(opts.pidFile, 'utf8').trim() === String(process.pid))
        rmSync(opts.pidFile)
      forgetLog()
      await log.close()
    },
  }
}
