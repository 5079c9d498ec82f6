import { appendFileSync, chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { isZombie } from '../../src/lib/pid.js'
import {
  asPgUser,
  checkPgBinaries,
  controlData,
  initdb,
  isRoot,
  makePgOwnedDir,
  meaningfulLine,
  PgBinError,
  pgBinDir,
  pgBinPath,
  pgCtlStart,
  pgCtlStatus,
  pgCtlStop,
  pgUserCanEnter,
  pgUserIds,
  runPgBin,
} from '../../src/postgres/pg-bin.js'
import { waitFor, waitUntil } from '../harness/wait.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-pg-bin-test-'))
// The postgres OS user must be able to reach the datadirs below.
chmodSync(root, 0o755)
afterAll(() => rmSync(root, { recursive: true, force: true, maxRetries: 3 }))

function oneLine(message: string): void {
  expect(message).not.toContain('\n')
}

async function rejection(promise: Promise<unknown>): Promise<PgBinError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(PgBinError)
  oneLine((err as Error).message)
  return err as PgBinError
}

describe('pg-bin', () => {
  it('tells whether the postgres OS user can enter a directory', async () => {
    const open = mkdtempSync(path.join(root, 'open-'))
    chmodSync(open, 0o755)
    const closed = mkdtempSync(path.join(root, 'closed-'))
    chmodSync(closed, 0o700)
    const inside = path.join(closed, 'inside')
    await makePgOwnedDir(inside, 0o755)
    expect(await pgUserCanEnter(open)).toBe(true)
    // As root, a directory of the postgres user's own is out of reach below one closed to it.
    expect(await pgUserCanEnter(inside)).toBe(!isRoot())
  })

  it('creates, starts, inspects and stops a cluster', async () => {
    const base = mkdtempSync(path.join(root, 'cluster-'))
    chmodSync(base, 0o755)
    const datadir = path.join(base, 'nested', 'data')
    const logFile = path.join(base, 'postgres.log')
    const socketDir = path.join(base, 'socket')
    await makePgOwnedDir(socketDir)
    await initdb(datadir, { args: ['--no-sync'] })
    const st = statSync(datadir)
    expect(st.mode & 0o777).toBe(0o700)
    if (process.getuid?.() === 0) expect(st.uid).toBe((await pgUserIds()).uid)

    const port = await freePort()
    appendFileSync(
      path.join(datadir, 'postgresql.conf'),
      `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${socketDir}'\nfsync = off\n`,
    )
    expect(await pgCtlStatus(datadir)).toEqual({ running: false })
    const before = await controlData(datadir)
    expect(before['Database cluster state']).toBe('shut down')

    try {
      await pgCtlStart(datadir, { logFile, timeoutSec: 60 })
      const status = await pgCtlStatus(datadir)
      expect(status.running).toBe(true)
      expect(status.pid).toBeGreaterThan(0)
      const control = await controlData(datadir)
      expect(control['Database cluster state']).toBe('in production')
      expect(control['pg_control version number']).toBe('1300')
      expect(control['Database system identifier']).toBe(before['Database system identifier'])
      expect(control['Latest checkpoint location']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)

      const env = { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGDATABASE: 'postgres' }
      const { stdout } = await runPgBin('psql', ['-X', '-A', '-t', '-c', 'SELECT 40 + 2'], { env })
      expect(stdout.trim()).toBe('42')
      const { stdout: fromStdin } = await runPgBin('psql', ['-X', '-A', '-t', '-f', '-'], {
        env,
        input: 'SELECT current_user',
      })
      expect(fromStdin.trim()).toBe('postgres')
      const err = await rejection(
        runPgBin('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT * FROM nope'], { env }),
      )
      expect(err.message).toMatch(/^psql exited with code 1: .*ERROR: +relation "nope" does not exist$/)
      expect(err.details.exitCode).toBe(1)
      expect(err.details.stderr).toContain('LINE 1')

      // Starting twice fails without stopping the running server.
      const twice = await rejection(pgCtlStart(datadir, { logFile }))
      expect(twice.message).toBe(`a server is already running in ${datadir} (pid ${status.pid})`)
      expect((await pgCtlStatus(datadir)).running).toBe(true)

      expect(await pgCtlStop(datadir, 'fast')).toEqual({ wasRunning: true })
      expect(await pgCtlStatus(datadir)).toEqual({ running: false })
      expect((await controlData(datadir))['Database cluster state']).toBe('shut down')
      expect(await pgCtlStop(datadir, 'immediate')).toEqual({ wasRunning: false })
    } finally {
      await pgCtlStop(datadir, 'immediate')
    }
  })

  it('takes a killed postmaster whose zombie is not reaped yet for stopped, and starts again', async () => {
    const base = mkdtempSync(path.join(root, 'zombie-'))
    chmodSync(base, 0o755)
    const datadir = path.join(base, 'data')
    // The shell below opens the log as the postgres OS user.
    await makePgOwnedDir(path.join(base, 'log'), 0o755)
    const logFile = path.join(base, 'log', 'postgres.log')
    await initdb(datadir, { args: ['--no-sync'] })
    const port = await freePort()
    appendFileSync(
      path.join(datadir, 'postgresql.conf'),
      `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n`,
    )
    // The postmaster's parent is a shell turned `sleep`, which never reaps it: once killed, it stays a
    // zombie until the sleep ends, as it does under an init that reaps orphans late.
    const [cmd, args] = asPgUser('sh', [
      '-c',
      `${pgBinPath('postgres')} -D ${datadir} >>${logFile} 2>&1 & exec sleep 3`,
    ])
    const parent = execa(cmd, args, { reject: false })
    try {
      const pid = await waitFor('postgres to accept connections', async () => {
        const { pid } = await pgCtlStatus(datadir)
        if (pid === undefined) return undefined
        const ready = await runPgBin('pg_isready', ['-h', '127.0.0.1', '-p', String(port)]).then(
          () => true,
          () => false,
        )
        return ready ? pid : undefined
      })
      process.kill(pid, 'SIGKILL')
      await waitUntil('the postmaster to be a zombie', () => isZombie(pid))
      expect(await pgCtlStatus(datadir)).toEqual({ running: false })
      expect(isZombie(pid)).toBe(false)
      await pgCtlStart(datadir, { logFile, timeoutSec: 60 })
      expect((await pgCtlStatus(datadir)).running).toBe(true)
    } finally {
      await pgCtlStop(datadir, 'immediate')
      await parent
    }
  })

  it('reports a failed start in one line with the server log, leaving nothing running', async () => {
    const base = mkdtempSync(path.join(root, 'badconf-'))
    chmodSync(base, 0o755)
    const datadir = path.join(base, 'data')
    const logFile = path.join(base, 'postgres.log')
    const socketDir = path.join(base, 'socket')
    await makePgOwnedDir(socketDir)
    await initdb(datadir, { args: ['--no-sync'] })
    appendFileSync(path.join(datadir, 'postgresql.conf'), `\nunix_socket_directories = '${socketDir}'\n`)
    // A pid file left by an earlier server that says "ready", with a live pid (ours): older than this
    // start, so it must not pass for the new server (pgCtlStart reads it to return before pg_ctl does).
    const old = Math.floor(Date.now() / 1000) - 3600
    writeFileSync(
      path.join(datadir, 'postmaster.pid'),
      `${process.pid}\n${datadir}\n${old}\n${await freePort()}\n${socketDir}\n127.0.0.1\n  1234   5678\nready   \n`,
    )
    const port = await freePort()
    try {
      const err = await rejection(
        pgCtlStart(datadir, {
          logFile,
          options: `-c port=${port} -c listen_addresses=127.0.0.1 -c shared_buffers=lots`,
        }),
      )
      expect(err.message).toMatch(/^pg_ctl exited with code 1: .*could not start server/)
      expect(err.message).toContain(`${logFile}: `)
      expect(err.message).toMatch(/invalid value for parameter "shared_buffers": "lots"/)
      expect(await pgCtlStatus(datadir)).toEqual({ running: false })
    } finally {
      await pgCtlStop(datadir, 'immediate')
    }
  })

  it('fails in one line on bad arguments, missing datadirs and missing binaries', async () => {
    const err = await rejection(initdb(path.join(root, 'bad-arg', 'data'), { args: ['--no-such-option'] }))
    expect(err.message).toMatch(
      /^initdb exited with code 1: \S*initdb: unrecognized option '--no-such-option'$/,
    )

    const missing = await rejection(pgCtlStatus(path.join(root, 'no-such-datadir')))
    expect(missing.message).toMatch(/no-such-datadir is not an accessible PostgreSQL data directory/)

    expect(() => checkPgBinaries(pgBinDir())).not.toThrow()
    const bogus = path.join(root, 'no-postgres-here')
    expect(pgBinDir(bogus)).toBe(path.join(bogus, 'bin'))
    expect(() => checkPgBinaries(pgBinDir(bogus))).toThrow(PgBinError)
    expect(() => checkPgBinaries(pgBinDir(bogus))).toThrow(
      new RegExp(
        `${path.join(bogus, 'bin', 'postgres')} not found: install it with \`apt-get install postgresql-15\``,
      ),
    )

    const notFound = await rejection(runPgBin('no-such-tool', [], { binDir: bogus }))
    expect(notFound.message).toContain('no-such-tool')
  })

  it('picks the line that says what went wrong', () => {
    expect(
      meaningfulLine(
        'initdb: unrecognized option \'--x\'\ninitdb: hint: Try "initdb --help" for more information.\n',
      ),
    ).toBe("initdb: unrecognized option '--x'")
    expect(meaningfulLine('pg_ctl: could not start server\nExamine the log output.\n')).toBe(
      'pg_ctl: could not start server',
    )
    expect(meaningfulLine('2024 [1] FATAL:  bad\n2024 [1] LOG:  database system is shut down\n')).toBe(
      '2024 [1] FATAL:  bad',
    )
    expect(meaningfulLine('\n  \n')).toBeUndefined()
  })
})
