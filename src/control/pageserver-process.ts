/**
 * The pageserver as the control plane runs it: a detached child (`zenith pageserver start`, logging to
 * pageserver/pageserver.log, found again through pageserver/pageserver.pid), or in this very process
 * (`zenith start --embedded`, `zenith pageserver run`). Both run the same Pageserver code.
 *
 * Only a clean stop removes the pid file. A pageserver that was killed or crashed leaves it behind,
 * naming a pid that is gone: that is how `pageserverStatus` tells "died" from "stopped", and why a
 * crash is logged (with its stack) before the process exits.
 */

import { existsSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { createLogger, type Logger } from '../lib/log.js'
import { Pageserver } from '../pageserver/pageserver.js'
import {
  pageserverClientOf,
  pageserverConfigOf,
  pageserverDir,
  pageserverLogFile,
  pageserverPidFile,
} from './layout.js'
import { packageRoot } from './package-root.js'
import {
  isAlive,
  lastLogLines,
  PortBusyError,
  portInUse,
  readPidFile,
  stalePid,
  startDetached,
  stopByPidFile,
} from './process.js'

export class PageserverStateError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'PageserverStateError'
}

/** How to run `zenith` itself again: the built CLI, or the sources through tsx when we run from them. */
function zenithArgv(): string[] {
  const bin = path.join(packageRoot(), 'bin')
  if (import.meta.url.endsWith('.ts')) return ['--import', 'tsx', path.join(bin, 'dev.js')]
  return [path.join(bin, 'run.js')]
}

async function checkPorts(repoDir: string): Promise<void> {
  const cfg = pageserverConfigOf(repoDir)
  for (const [what, a] of [
    ['HTTP API', cfg.listenHttpAddr],
    ['page service', cfg.listenPgAddr],
  ] as const) {
    if (await portInUse(a.host, a.port)) {
      throw new PortBusyError(
        `pageserver ${what} port ${a.port} on ${a.host} is already in use; change it in ${pageserverDir(repoDir)}/pageserver.toml`,
      )
    }
  }
}

/** How many of a dead pageserver's last log lines its status shows. */
const DIED_LOG_LINES = 10

export interface PageserverStatus {
  /** `died`: not running, yet nothing stopped it cleanly (killed, crashed). */
  state: 'running' | 'stopped' | 'died'
  running: boolean
  pid: number | null
  http: string
  pg: string
  /** The HTTP API answers. */
  reachable: boolean
  log_file: string
  /** Only when it died: the end of its log, oldest first, which should say why. */
  last_log_lines?: string[]
}

export async function pageserverStatus(repoDir: string): Promise<PageserverStatus> {
  const cfg = pageserverConfigOf(repoDir)
  const pidFile = pageserverPidFile(repoDir)
  const pid = readPidFile(pidFile)
  const running = pid !== null && isAlive(pid)
  const died = !running && stalePid(pidFile)
  const logFile = pageserverLogFile(repoDir)
  return {
    state: running ? 'running' : died ? 'died' : 'stopped',
    running,
    pid: running ? pid : null,
    http: `${cfg.listenHttpAddr.host}:${cfg.listenHttpAddr.port}`,
    pg: `${cfg.listenPgAddr.host}:${cfg.listenPgAddr.port}`,
    reachable: running && (await pageserverClientOf(repoDir).isUp()),
    log_file: logFile,
    ...(died ? { last_log_lines: lastLogLines(logFile, DIED_LOG_LINES) } : {}),
  }
}

/**
 * Makes an uncaught exception or unhandled rejection end the process as the pageserver's last log line
 * (level ERROR, the stack as a field) and exit code 1, instead of a Node trace on stderr that an
 * embedded pageserver's log never sees. Returns the function that removes the handlers again.
 */
function exitOnCrash(log: Logger): () => void {
  let crashed = false
  const handler = (what: string) => (err: unknown) => {
    // Closing the log can fail in turn; the first failure is the one that explains the crash.
    if (crashed) return
    crashed = true
    log('error', what, {
      error: err instanceof Error ? err.message : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    })
    void log.close().finally(() => process.exit(1))
  }
  const onException = handler('uncaught exception')
  const onRejection = handler('unhandled rejection')
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.off('uncaughtException', onException)
    process.off('unhandledRejection', onRejection)
  }
}

/** Starts the pageserver as a detached process; a running one is left alone. */
export async function startPageserver(repoDir: string): Promise<{ pid: number; alreadyRunning: boolean }> {
  const pidFile = pageserverPidFile(repoDir)
  const existing = readPidFile(pidFile)
  if (existing !== null && isAlive(existing)) return { pid: existing, alreadyRunning: true }
  await checkPorts(repoDir)
  const client = pageserverClientOf(repoDir)
  return startDetached({
    command: process.execPath,
    args: [...zenithArgv(), 'pageserver', 'run', '--repo-dir', repoDir],
    pidFile,
    logFile: pageserverLogFile(repoDir),
    ready: () => client.isUp(),
    timeoutMs: 60_000,
    name: 'pageserver',
  })
}

/** Stops it: SIGTERM lets it flush everything ingested; `immediate` kills it (WAL is streamed again). */
export async function stopPageserver(repoDir: string, opts: { immediate?: boolean } = {}) {
  return stopByPidFile({
    pidFile: pageserverPidFile(repoDir),
    name: 'pageserver',
    signal: opts.immediate ? 'SIGKILL' : 'SIGTERM',
    timeoutMs: 120_000,
  })
}

export interface RunningPageserver {
  pageserver: Pageserver
  /** Stops the pageserver and releases the pid file and the log. */
  stop(): Promise<void>
}

/**
 * Runs the pageserver in this process and claims its pid file, so `zenith status` and `zenith stop` from
 * another shell find it. Logs go to stdout when that is the log file (a detached start), else appended to
 * the log file.
 */
export async function runPageserver(
  repoDir: string,
  opts: { logToStdout: boolean },
): Promise<RunningPageserver> {
  const pidFile = pageserverPidFile(repoDir)
  const other = readPidFile(pidFile)
  if (other !== null && other !== process.pid && isAlive(other)) {
    throw new PageserverStateError(`the pageserver is already running (pid ${other})`, {
      kind: 'conflict',
      hint: 'stop it with `zenith stop`',
    })
  }
  const log: Logger = opts.logToStdout
    ? createLogger({ stream: process.stdout })
    : createLogger({ file: pageserverLogFile(repoDir) })
  const removeCrashHandlers = exitOnCrash(log)
  let ps: Pageserver
  try {
    // Read here rather than by Pageserver.start: its log level applies from the first line on, and a
    // config that cannot be read is still logged, at the default level.
    const config = pageserverConfigOf(repoDir)
    log.level = config.logLevel
    ps = await Pageserver.start(pageserverDir(repoDir), { log, config })
  } catch (err) {
    log('error', 'pageserver failed to start', { error: (err as Error).message })
    removeCrashHandlers()
    await log.close()
    throw err
  }
  writeFileDurable(pidFile, `${process.pid}\n`)
  return {
    pageserver: ps,
    stop: async () => {
      await ps.stop()
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile)
      removeCrashHandlers()
      await log.close()
    },
  }
}
