/**
 * Running the stock PostgreSQL 15 binaries (initdb, pg_ctl, postgres, psql, pg_controldata, pgbench,
 * pg_dumpall, ...) for the local control plane and the test harness.
 *
 * Postgres refuses to run as root, so when we are root every binary runs as the `postgres` OS user through
 * `runuser -u postgres --`, and the directories it writes must belong to that user (`giveToPgUser`,
 * `makePgOwnedDir`). Binaries run with LC_ALL=C so that output we parse, such as pg_controldata's labels,
 * is never translated. Failures are `PgBinError`s with a one-line message: the binary, its exit code and
 * the stderr line that says what went wrong, rather than the help hints printed after it.
 *
 *     pgBinDir(distribDir?)                  <distrib>/bin; distrib defaults to $ZENITH_PG_DISTRIB_DIR or
 *                                            /usr/lib/postgresql/15
 *     checkPgBinaries(binDir?)               throws PgBinError naming a missing postgres/initdb/pg_ctl
 *     runPgBin(bin, args, opts?)             { stdout, stderr }; bin is a name in binDir or an absolute path
 *     asPgUser(cmd, args)                    [cmd, args] wrapped in runuser when root
 *     giveToPgUser(dir) / makePgOwnedDir(dir, mode?)
 *     initdb(datadir, opts?)                 -U postgres --encoding=UTF8 --locale=C -A trust + opts.args
 *     pgCtlStart(datadir, { logFile, timeoutSec?, options? })   fails if already running
 *     pgCtlStop(datadir, mode, { timeoutSec? })   { wasRunning }; a stopped server is not an error
 *     pgCtlStatus(datadir)                   { running, pid? }
 *     controlData(datadir)                   pg_controldata output as label -> value
 *
 * Paths handed to these helpers should be absolute: as root the binaries run with cwd `/`, because the
 * postgres user may not be allowed to enter our working directory, and Postgres tools locate themselves
 * through the cwd. The helpers below resolve the paths they are given.
 */

import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { isAlive, isZombie } from '../lib/pid.js'

export const PG_OS_USER = 'postgres'
export const DEFAULT_PG_DISTRIB_DIR = '/usr/lib/postgresql/15'
/** The binaries without which no cluster can be created or started. */
const REQUIRED_BINARIES = ['postgres', 'initdb', 'pg_ctl']
/** A message is one line; an overlong stderr line (a query echoed back, say) is cut. */
const MAX_REASON_LENGTH = 400
/** How long a status waits for a killed postmaster's zombie to be reaped. */
const ZOMBIE_REAP_MS = 10_000

export class PgBinError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'PgBinError'

  constructor(
    message: string,
    /** The full output, for callers that want more than the one line of the message. */
    readonly details: { exitCode?: number; stdout?: string; stderr?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export interface RunPgBinOptions {
  /** Added to our environment; LC_ALL is C unless set here. */
  env?: Record<string, string>
  input?: string
  /** Defaults to ours, or to `/` when root (see the module comment). */
  cwd?: string
  binDir?: string
  timeoutMs?: number
}

export function pgBinDir(
  distribDir: string = process.env.ZENITH_PG_DISTRIB_DIR ?? DEFAULT_PG_DISTRIB_DIR,
): string {
  return path.join(distribDir, 'bin')
}

/** Absolute path of a PostgreSQL executable; absolute names are kept as they are. */
export function pgBinPath(bin: string, binDir: string = pgBinDir()): string {
  return path.isAbsolute(bin) ? bin : path.join(binDir, bin)
}

export function checkPgBinaries(binDir: string = pgBinDir()): void {
  for (const bin of REQUIRED_BINARIES) {
    const file = path.join(binDir, bin)
    if (!existsSync(file)) {
      throw new PgBinError(
        `PostgreSQL 15 binary ${file} not found: install it with \`apt-get install postgresql-15\` or point ZENITH_PG_DISTRIB_DIR at a PostgreSQL 15 installation`,
      )
    }
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** Wraps a command so that it runs as the postgres OS user when we are root. */
export function asPgUser(cmd: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [cmd, args]
  return ['runuser', ['-u', PG_OS_USER, '--', cmd, ...args]]
}

let pgUser: Promise<{ uid: number; gid: number }> | undefined

/** uid and primary gid of the postgres OS user. */
export function pgUserIds(): Promise<{ uid: number; gid: number }> {
  pgUser ??= Promise.all([execa('id', ['-u', PG_OS_USER]), execa('id', ['-g', PG_OS_USER])]).then(
    ([uid, gid]) => ({ uid: Number(uid.stdout), gid: Number(gid.stdout) }),
    (err: unknown) => {
      pgUser = undefined
      throw new PgBinError(
        `running as root needs the "${PG_OS_USER}" OS user, which the postgresql-15 package creates: ${firstLine(err)}`,
        {},
        { cause: err },
      )
    },
  )
  return pgUser
}

/**
 * Whether the postgres OS user can enter `dir` (always true when we are not root). A datadir below a
 * directory closed to it, such as root's home, is unusable however its own permissions are set.
 */
export async function pgUserCanEnter(dir: string): Promise<boolean> {
  if (!isRoot()) return true
  const [cmd, args] = asPgUser('test', ['-x', path.resolve(dir)])
  const r = await execa(cmd, args, { reject: false })
  return r.exitCode === 0
}

/** Hands `dir` and everything below it to the postgres OS user when root; a no-op otherwise. */
export async function giveToPgUser(dir: string): Promise<void> {
  if (!isRoot()) return
  const { uid, gid } = await pgUserIds()
  await execa('chown', ['-R', '--no-dereference', `${uid}:${gid}`, dir])
}

/**
 * Creates `dir` owned by the postgres OS user. Postgres insists on a datadir of mode 0700 or 0750, hence
 * the default. Missing parents are created as `mkdir -p` would, ours and open to traversal, since the
 * postgres user has to pass through them. An existing dir gets the mode and owner too.
 */
export async function makePgOwnedDir(dir: string, mode = 0o700): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(dir)), { recursive: true })
  await fs.mkdir(dir, { recursive: true, mode })
  // mkdir's mode is filtered by the umask.
  await fs.chmod(dir, mode)
  if (isRoot()) {
    const { uid, gid } = await pgUserIds()
    await fs.chown(dir, uid, gid)
  }
}

export async function runPgBin(
  bin: string,
  args: string[],
  opts: RunPgBinOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  const file = pgBinPath(bin, opts.binDir)
  const [cmd, cmdArgs] = asPgUser(file, args)
  const result = await execa(cmd, cmdArgs, {
    cwd: opts.cwd ?? (isRoot() ? '/' : undefined),
    input: opts.input,
    env: { LC_ALL: 'C', ...opts.env },
    timeout: opts.timeoutMs,
    reject: false,
  })
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  if (!result.failed) return { stdout, stderr }

  const name = path.basename(file)
  let what: string
  if (result.timedOut) what = `${name} timed out after ${opts.timeoutMs} ms`
  else if (result.exitCode !== undefined) what = `${name} exited with code ${result.exitCode}`
  else if (result.signal) what = `${name} was killed by ${result.signal}`
  else what = `${name} could not be run (${file})`
  const reason = meaningfulLine(stderr) ?? meaningfulLine(stdout) ?? firstLine(result.originalMessage ?? '')
  throw new PgBinError(reason ? `${what}: ${reason}` : what, { exitCode: result.exitCode, stdout, stderr })
}

/**
 * The line that says what went wrong: Postgres tools follow their error with hints ("Try --help",
 * "Examine the log output"), so the last error-tagged line wins over the last line.
 */
export function meaningfulLine(output: string): string | undefined {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
  const isNoise = (l: string) =>
    /^\S+: (hint|detail):/i.test(l) ||
    /^(HINT|DETAIL):/.test(l) ||
    /^Try ".*--help"/.test(l) ||
    /^Examine the log output/.test(l)
  const pick = lastOf(lines, (l) => /\b(error|fatal|panic):/i.test(l)) ?? lastOf(lines, (l) => !isNoise(l))
  if (pick === undefined) return undefined
  return pick.length > MAX_REASON_LENGTH ? `${pick.slice(0, MAX_REASON_LENGTH)}...` : pick
}

function lastOf(lines: string[], test: (line: string) => boolean): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) if (test(lines[i])) return lines[i]
  return undefined
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.trim().split('\n')[0]
}

export interface InitdbOptions {
  /** More initdb arguments, e.g. `['--data-checksums']` or `['--no-sync']`. */
  args?: string[]
  env?: Record<string, string>
  binDir?: string
}

/** Creates a cluster in `datadir`, which must not exist or be empty; missing parents are created. */
export async function initdb(datadir: string, opts: InitdbOptions = {}): Promise<void> {
  const dir = path.resolve(datadir)
  // initdb running as postgres could not create the dir inside a root-owned parent.
  await makePgOwnedDir(dir)
  await runPgBin(
    'initdb',
    ['-D', dir, '-U', 'postgres', '--encoding=UTF8', '--locale=C', '-A', 'trust', ...(opts.args ?? [])],
    { env: opts.env, binDir: opts.binDir },
  )
}

export interface PgCtlStartOptions {
  /** The server log; created for the postgres OS user when root, because pg_ctl opens it as that user. */
  logFile: string
  /** How long pg_ctl waits for the server to accept connections (pg_ctl's default is 60). */
  timeoutSec?: number
  /** Passed to postgres through `pg_ctl -o`, e.g. `-c port=5433`. */
  options?: string
  env?: Record<string, string>
  binDir?: string
}

/**
 * Starts the server and waits until it accepts connections. A failed start leaves nothing running, and
 * its message carries the server log's last error, since pg_ctl itself only says "could not start server".
 * A server already running in `datadir` is an error, and is left alone.
 */
export async function pgCtlStart(datadir: string, opts: PgCtlStartOptions): Promise<void> {
  const dir = path.resolve(datadir)
  // Checked first, so that the cleanup after a failed start can only ever stop a server we started.
  const before = await pgCtlStatus(dir, { binDir: opts.binDir })
  if (before.running) {
    throw new PgBinError(`a server is already running in ${dir}${before.pid ? ` (pid ${before.pid})` : ''}`)
  }
  const logFile = path.resolve(opts.logFile)
  if (isRoot()) {
    await (await fs.open(logFile, 'a', 0o600)).close()
    const { uid, gid } = await pgUserIds()
    await fs.chown(logFile, uid, gid)
  }
  const logStart = await fs
    .stat(logFile)
    .then((st) => st.size)
    .catch(() => 0)
  const args = ['-w', '-D', dir, '-l', logFile]
  if (opts.timeoutSec !== undefined) args.push('-t', String(opts.timeoutSec))
  if (opts.options !== undefined) args.push('-o', opts.options)
  args.push('start')
  // pg_ctl -w looks at the server ten times a second; postmaster.pid says "ready" ~50 ms after the start
  // of an empty datadir. Once it does, the server is up and pg_ctl is left to see it at its next look and
  // exit (stopping it would cost more: runuser waits 2 s for a child it passed a SIGTERM to); a failed
  // start is still pg_ctl's to report.
  const startedAt = Date.now()
  const ctl = runPgBin('pg_ctl', args, { env: opts.env, binDir: opts.binDir })
  ctl.catch(() => undefined)
  try {
    await Promise.race([ctl, waitUntilReady(dir, startedAt, ctl)])
  } catch (err) {
    if (!(err instanceof PgBinError)) throw err
    // pg_ctl gives up waiting after its timeout while the postmaster may still be starting.
    const status = await pgCtlStatus(dir, { binDir: opts.binDir }).catch(() => ({ running: false }))
    if (status.running) await pgCtlStop(dir, 'immediate', { binDir: opts.binDir }).catch(() => {})
    const log = await readFrom(logFile, logStart)
    const logLine = meaningfulLine(log)
    const message = logLine ? `${err.message}; ${logFile}: ${logLine}` : `${err.message}; see ${logFile}`
    throw new PgBinError(message, err.details, { cause: err })
  }
}

/** postmaster.pid's lines (Postgres' LOCK_FILE_LINE_*): pid, datadir, start time, ..., status last. */
const PID_FILE_START_TIME_LINE = 2
const PID_FILE_STATUS_LINE = 7
const READY_POLL_MS = 10

/**
 * Resolves to 'pid file' once postmaster.pid, written by a postmaster started after `startedAt`, says it
 * is ready and its pid is alive (what pg_ctl -w checks); gives up when `ctl` settles first.
 */
async function waitUntilReady(dir: string, startedAt: number, ctl: Promise<unknown>): Promise<'pid file'> {
  let settled = false
  ctl.then(
    () => (settled = true),
    () => (settled = true),
  )
  while (!settled) {
    const lines = await fs
      .readFile(path.join(dir, 'postmaster.pid'), 'utf8')
      .then((t) => t.split('\n'))
      .catch(() => [])
    const pid = Number(lines[0])
    // A second of slack: the pid file holds whole seconds. An older file is left from an earlier server.
    const fresh = Number(lines[PID_FILE_START_TIME_LINE]) >= Math.floor(startedAt / 1000) - 1
    if (lines[PID_FILE_STATUS_LINE]?.trim() === 'ready' && fresh && pid > 0 && isAlive(pid)) return 'pid file'
    await sleep(READY_POLL_MS)
  }
  // pg_ctl finished first: its result decides, and this never resolves.
  return new Promise<never>(() => {})
}

/** What the server wrote to its log in this attempt: the file is appended to across restarts. */
async function readFrom(file: string, offset: number): Promise<string> {
  try {
    const text = await fs.readFile(file)
    return text.subarray(Math.min(offset, text.length)).toString('utf8')
  } catch {
    return ''
  }
}

/** Stops the server and waits until it is gone; stopping a server that is not running is not an error. */
export async function pgCtlStop(
  datadir: string,
  mode: 'fast' | 'immediate' | 'smart',
  opts: { timeoutSec?: number; binDir?: string } = {},
): Promise<{ wasRunning: boolean }> {
  const dir = path.resolve(datadir)
  if (!(await pgCtlStatus(dir, opts)).running) return { wasRunning: false }
  const args = ['-w', '-D', dir, '-m', mode]
  if (opts.timeoutSec !== undefined) args.push('-t', String(opts.timeoutSec))
  args.push('stop')
  try {
    await runPgBin('pg_ctl', args, { binDir: opts.binDir })
  } catch (err) {
    // The server may have exited between the status check and the stop.
    if (!(await pgCtlStatus(dir, opts)).running) return { wasRunning: true }
    throw err
  }
  return { wasRunning: true }
}

/**
 * `pg_ctl status`: exit code 3 is a stopped server. Code 4, a datadir that does not exist or cannot be
 * read, is an error rather than "not running", so that a wrong path cannot pass for a stopped cluster.
 */
export async function pgCtlStatus(
  datadir: string,
  opts: { binDir?: string } = {},
): Promise<{ running: boolean; pid?: number }> {
  const dir = path.resolve(datadir)
  try {
    const { stdout } = await runPgBin('pg_ctl', ['-D', dir, 'status'], { binDir: opts.binDir })
    const m = /\(PID: (\d+)\)/.exec(stdout)
    if (!m) return { running: true }
    const pid = Number(m[1])
    // A killed postmaster is a zombie until init reaps it (pg_ctl, its parent, exited long ago), which
    // can take seconds; pg_ctl's signal 0 still finds it, and so would the lock-file check of the next
    // postmaster. It is not running, and a start has to wait for it to be gone. (Gone already: reaped
    // since pg_ctl looked.)
    if (!isAlive(pid)) {
      const reapedBy = Date.now() + ZOMBIE_REAP_MS
      while (isZombie(pid) && Date.now() < reapedBy) await sleep(50)
      return { running: false }
    }
    return { running: true, pid }
  } catch (err) {
    if (err instanceof PgBinError && err.details.exitCode === 3) return { running: false }
    if (err instanceof PgBinError && err.details.exitCode === 4) {
      throw new PgBinError(
        `${dir} is not an accessible PostgreSQL data directory: ${err.message}`,
        err.details,
        {
          cause: err,
        },
      )
    }
    throw err
  }
}

/** `pg_controldata` as label -> value, e.g. 'Database cluster state' -> 'in production'. */
export async function controlData(
  datadir: string,
  opts: { binDir?: string } = {},
): Promise<Record<string, string>> {
  const { stdout } = await runPgBin('pg_controldata', ['-D', path.resolve(datadir)], { binDir: opts.binDir })
  const out: Record<string, string> = {}
  for (const line of stdout.split('\n')) {
    // Values may contain colons (timestamps), labels never do.
    const m = /^([^:]+):\s*(.*)$/.exec(line)
    if (m) out[m[1].trim()] = m[2].trim()
  }
  return out
}
