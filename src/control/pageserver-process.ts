/**
 * The pageserver as the control plane runs it: a detached child (`zenith pageserver start`, logging to
 * pageserver/pageserver.log, found again through pageserver/pageserver.pid), or in this very process
 * (`zenith start --embedded`, `zenith pageserver run`). Both run the same Pageserver code.
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
import { isAlive, PortBusyError, portInUse, readPidFile, startDetached, stopByPidFile } from './process.js'

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

export interface PageserverStatus {
  running: boolean
  pid: number | null
  http: string
  pg: string
  /** The HTTP API answers. */
  reachable: boolean
}

export async function pageserverStatus(repoDir: string): Promise<PageserverStatus> {
  const cfg = pageserverConfigOf(repoDir)
  const pid = readPidFile(pageserverPidFile(repoDir))
  const running = pid !== null && isAlive(pid)
  return {
    running,
    pid: running ? pid : null,
    http: `${cfg.listenHttpAddr.host}:${cfg.listenHttpAddr.port}`,
    pg: `${cfg.listenPgAddr.host}:${cfg.listenPgAddr.port}`,
    reachable: running && (await pageserverClientOf(repoDir).isUp()),
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
  let ps: Pageserver
  try {
    ps = await Pageserver.start(pageserverDir(repoDir), { log })
  } catch (err) {
    log('error', 'pageserver failed to start', { error: (err as Error).message })
    await log.close()
    throw err
  }
  writeFileDurable(pidFile, `${process.pid}\n`)
  return {
    pageserver: ps,
    stop: async () => {
      await ps.stop()
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile)
      await log.close()
    },
  }
}
