/**
 * Throwaway PostgreSQL 15 clusters for tests.
 *
 * Each cluster lives in its own temp dir (`zenith-pg-*`): the datadir, the server log and the unix socket.
 * Servers listen on 127.0.0.1 at a port picked by `freePort()` and trust every local connection as user
 * `postgres`. Postgres refuses to run as root, so when the tests run as root every tool that touches a
 * datadir is wrapped in `runuser -u postgres --` and the temp dir is owned by the `postgres` OS user.
 * SQL goes over TCP through node-postgres (./sql.ts), not psql.
 *
 * Typical use:
 *
 *     await withPostgres({ settings: { wal_level: 'logical' } }, async (pg) => {
 *       await pg.sql('CREATE TABLE t AS SELECT generate_series(1, 3) AS id')
 *       expect(await pg.sql('SELECT count(*), sum(id) FROM t')).toBe('3|6')
 *       const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn')
 *       await pg.stop()
 *       const control = await fs.readFile(path.join(pg.datadir, 'global/pg_control'))
 *     })
 *
 * Every cluster is remembered until `destroy()`; if the test process exits first, an exit/SIGINT/SIGTERM hook
 * stops the leftovers with `pg_ctl -m immediate` and removes their temp dirs, so no postmaster outlives it.
 *
 * Running binaries as the right OS user is src/postgres/pg-bin.ts's job; this module adds throwaway clusters.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { freePort } from '../../src/control/process.js'
import {
  asPgUser,
  giveToPgUser,
  initdb,
  isRoot,
  PgBinError,
  pgBinDir,
  pgUserIds,
  runPgBin,
} from '../../src/postgres/pg-bin.js'
import { query, queryText } from './sql.js'

export { freePort }

export const PG_BIN_DIR: string = process.env.ZENITH_PG_BIN_DIR ?? pgBinDir()

const LOG_TAIL_LINES = 30
const START_ATTEMPTS = 3

export type SettingValue = string | number | boolean

export interface StartOptions {
  /**
   * GUCs appended to postgresql.conf; strings are quoted, booleans become on/off. `fsync` defaults to off
   * (as in Postgres' own TAP tests); port, listen_addresses and unix_socket_directories are the harness's.
   */
  settings?: Record<string, SettingValue>
  /** Extra initdb arguments, e.g. `['--data-checksums']`. */
  initdbArgs?: string[]
  /** Label that ends up in the temp dir's name, handy when a test keeps several clusters. */
  name?: string
  /**
   * Fills the (empty, 0700) datadir instead of initdb, e.g. by extracting a basebackup; the harness then
   * hands it to the postgres OS user and appends its settings to the postgresql.conf found there.
   */
  populate?: (datadir: string) => Promise<void>
}

export interface PgCluster {
  readonly port: number
  readonly host: '127.0.0.1'
  /** Temp dir that holds everything below; removed by `destroy()`. */
  readonly baseDir: string
  readonly datadir: string
  /** Directory of the server's unix socket (`unix_socket_directories`). */
  readonly socketDir: string
  /** datadir/pg_wal */
  readonly walDir: string
  /** The server log written by `pg_ctl -l`. */
  readonly logFile: string
  /** `postgresql://postgres@127.0.0.1:PORT/db`, db defaults to `postgres`. */
  connectionString(db?: string): string
  /**
   * The rows of `text` (with `$1`.. `params`) on a fresh connection to `db`; see ./sql.ts `query`. Several
   * statements in one string run as one transaction, so send VACUUM, CREATE DATABASE and the like alone.
   */
  query<T = Record<string, unknown>>(text: string, params?: unknown[], opts?: { db?: string }): Promise<T[]>
  /**
   * The rows of `script` as psql -A -t printed them (one line per row, columns joined by `|`); see ./sql.ts
   * `queryText`. Several statements in one string run as one transaction; a list runs each entry on its
   * own, in one session, like a psql script.
   */
  sql(script: string | readonly string[], opts?: { db?: string }): Promise<string>
  /**
   * Runs a PG tool (a name from PG_BIN_DIR or an absolute path) as the postgres OS user when root, with
   * PGHOST, PGPORT, PGUSER, PGDATABASE and PGDATA pointing at this cluster and LC_ALL=C so that output
   * labels are not translated. Rejects when the tool exits non-zero.
   */
  run(bin: string, args: string[], opts?: { input?: string }): Promise<{ stdout: string; stderr: string }>
  /** Stops the server (`pg_ctl -w stop`, fast by default); a no-op when it is not running. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  /** Starts the server again after `stop()`, on the same datadir and port. */
  start(): Promise<void>
  /** The last lines of the server log, for error messages. */
  logTail(lines?: number): Promise<string>
  /** Stops the server immediately and removes the temp dir; idempotent. */
  destroy(): Promise<void>
}

/** Absolute path of a PostgreSQL executable. */
export function pgBin(name: string): string {
  return path.join(PG_BIN_DIR, name)
}

/** Wraps a command so that it runs as the postgres OS user when we are root. */
export const runAsPostgres: (cmd: string, args: string[]) => [string, string[]] = asPgUser

/**
 * Creates a temp dir that both root and the postgres OS user can use (0755, owned by postgres when root).
 * The caller removes it.
 */
export async function makeTempDir(prefix = 'zenith-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
  await fs.chmod(dir, 0o755)
  if (isRoot()) {
    const { uid, gid } = await pgUserIds()
    await fs.chown(dir, uid, gid)
  }
  return dir
}

async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/** Runs `fn` with a fresh temp dir from `makeTempDir` and removes the dir afterwards, also on failure. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTempDir(prefix)
  try {
    return await fn(dir)
  } finally {
    await removeDir(dir)
  }
}

/** Formats a GUC value for postgresql.conf, whose quoted strings treat both `''` and `\` specially. */
function confValue(value: SettingValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off'
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`setting value ${value} is not a finite number`)
    return String(value)
  }
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`
}

/** The harness owns these: the cluster's port, host and socketDir properties must stay true. */
const RESERVED_SETTINGS = new Set(['port', 'listen_addresses', 'unix_socket_directories'])

function settingLines(settings: Record<string, SettingValue>): string[] {
  return Object.entries(settings).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) {
      throw new Error(`invalid setting name ${JSON.stringify(name)}`)
    }
    if (RESERVED_SETTINGS.has(name.toLowerCase())) {
      throw new Error(`setting ${name} is chosen by the test harness and cannot be overridden`)
    }
    return `${name} = ${confValue(value)}`
  })
}

const live = new Set<Cluster>()
let exitHooksInstalled = false

/** Synchronous because 'exit' handlers cannot wait: stop leftovers hard and remove their temp dirs. */
function cleanupLeftovers(): void {
  for (const cluster of live) {
    if (existsSync(path.join(cluster.datadir, 'postmaster.pid'))) {
      const [cmd, args] = runAsPostgres(pgBin('pg_ctl'), [
        '-w',
        '-D',
        cluster.datadir,
        '-m',
        'immediate',
        'stop',
      ])
      spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 })
    }
    rmSync(cluster.baseDir, { recursive: true, force: true, maxRetries: 3 })
  }
  live.clear()
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupLeftovers()
  process.off(signal, onSignal)
  // Another listener means someone else decides how to exit; otherwise restore the default fate.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function installExitHooks(): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', cleanupLeftovers)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}

class Cluster implements PgCluster {
  readonly host = '127.0.0.1' as const
  readonly datadir: string
  readonly socketDir: string
  readonly walDir: string
  readonly logFile: string
  private destroyed = false

  constructor(
    readonly baseDir: string,
    public port: number,
  ) {
    this.datadir = path.join(baseDir, 'data')
    this.socketDir = baseDir
    this.walDir = path.join(this.datadir, 'pg_wal')
    this.logFile = path.join(baseDir, 'postgres.log')
  }

  connectionString(db = 'postgres'): string {
    return `postgresql://postgres@${this.host}:${this.port}/${encodeURIComponent(db)}`
  }

  query<T = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    opts: { db?: string } = {},
  ): Promise<T[]> {
    return query<T>(this.connectionString(opts.db), text, params)
  }

  sql(script: string | readonly string[], opts: { db?: string } = {}): Promise<string> {
    return queryText(this.connectionString(opts.db), script)
  }

  async run(
    bin: string,
    args: string[],
    opts: { input?: string } = {},
  ): Promise<{ stdout: string; stderr: string }> {
    try {
      return await runPgBin(bin, args, {
        binDir: PG_BIN_DIR,
        cwd: this.baseDir,
        input: opts.input,
        env: this.env(),
      })
    } catch (err) {
      // A test failure is easier to read with all of stderr than with the one line the control plane shows.
      const stderr = err instanceof PgBinError ? err.details.stderr?.trim() : undefined
      if (!stderr || !(err instanceof PgBinError)) throw err
      throw new PgBinError(`${err.message}\n${stderr}`, err.details, { cause: err })
    }
  }

  env(): Record<string, string> {
    return {
      PGHOST: this.host,
      PGPORT: String(this.port),
      PGUSER: 'postgres',
      PGDATABASE: 'postgres',
      PGDATA: this.datadir,
      LC_ALL: 'C',
    }
  }

  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    const text = await fs.readFile(this.logFile, 'utf8').catch(() => '')
    return text.trimEnd().split('\n').slice(-lines).join('\n')
  }

  /**
   * Asks the datadir rather than remembering what we did, so that a test may also stop, kill or start the
   * server itself (a killed postmaster leaves a stale postmaster.pid behind).
   */
  private async isRunning(): Promise<boolean> {
    const pidFile = await fs.readFile(path.join(this.datadir, 'postmaster.pid'), 'utf8').catch(() => '')
    const pid = Number.parseInt(pidFile, 10)
    if (!(pid > 0)) return false
    try {
      process.kill(pid, 0)
      return true
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM'
    }
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`cluster in ${this.baseDir} was destroyed`)
    if (await this.isRunning()) return
    try {
      await this.run('pg_ctl', ['-w', '-D', this.datadir, '-l', this.logFile, 'start'])
    } catch (err) {
      // pg_ctl gives up after its wait timeout while the postmaster may still be alive.
      await this.stop('immediate').catch(() => {})
      const reason = err instanceof Error ? err.message : String(err)
      throw new Error(
        `postgres failed to start on port ${this.port} (datadir ${this.datadir}): ${reason}\n` +
          `--- last ${LOG_TAIL_LINES} lines of ${this.logFile} ---\n${await this.logTail()}`,
        { cause: err },
      )
    }
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!(await this.isRunning())) return
    await this.run('pg_ctl', ['-w', '-D', this.datadir, '-m', mode, 'stop'])
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return
    try {
      await this.stop('immediate')
    } finally {
      this.destroyed = true
      live.delete(this)
      await removeDir(this.baseDir)
    }
  }
}

function isBindFailure(log: string): boolean {
  return /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(log)
}

/**
 * initdb (or `populate`) + start a fresh cluster in a new temp dir. The caller must `destroy()` it (or use `withPostgres`);
 * the exit hooks are only a safety net.
 */
export async function startPostgres(opts: StartOptions = {}): Promise<PgCluster> {
  // Later lines win in postgresql.conf, so the user's settings can override the fsync default.
  const userLines = settingLines({ fsync: false, ...opts.settings })
  const label = opts.name ? `${opts.name.replace(/[^A-Za-z0-9_-]/g, '_')}-` : ''
  const baseDir = await makeTempDir(`zenith-pg-${label}`)
  installExitHooks()
  // initdb's trial postmasters read PGPORT, which must therefore be valid before initdb runs.
  const cluster = new Cluster(baseDir, await freePort())
  live.add(cluster)
  try {
    if (opts.populate) {
      await fs.mkdir(cluster.datadir, { mode: 0o700 })
      await opts.populate(cluster.datadir)
      if (isRoot()) {
        await giveToPgUser(cluster.datadir)
        await execa('chmod', ['-R', 'u+rwX,go-rwx', cluster.datadir])
      }
    } else {
      // --no-sync: a throwaway cluster does not need to survive an OS crash, and fsyncing it costs seconds.
      await initdb(cluster.datadir, {
        args: ['--no-sync', ...(opts.initdbArgs ?? [])],
        binDir: PG_BIN_DIR,
        env: cluster.env(),
      })
    }
    const confPath = path.join(cluster.datadir, 'postgresql.conf')
    const initdbConf = await fs.readFile(confPath, 'utf8')
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) cluster.port = await freePort()
      const harnessLines = [
        '',
        '# added by the zenith test harness',
        `listen_addresses = ${confValue(cluster.host)}`,
        `port = ${cluster.port}`,
        `unix_socket_directories = ${confValue(cluster.socketDir)}`,
        ...userLines,
        '',
      ]
      await fs.writeFile(confPath, initdbConf + harnessLines.join('\n'))
      try {
        await cluster.start()
        return cluster
      } catch (err) {
        // freePort() cannot reserve the port, so a parallel test may have grabbed it in the meantime.
        if (attempt >= START_ATTEMPTS || !isBindFailure(await cluster.logTail())) throw err
      }
    }
  } catch (err) {
    await cluster.destroy().catch(() => {})
    throw err
  }
}

/** Runs `fn` against a fresh cluster, then stops it and removes its temp dir, also when `fn` throws. */
export async function withPostgres<T>(opts: StartOptions, fn: (pg: PgCluster) => Promise<T>): Promise<T> {
  const pg = await startPostgres(opts)
  try {
    return await fn(pg)
  } finally {
    await pg.destroy()
  }
}
