/**
 * A pageserver that dies, as `zenith status` and `zenith pageserver status` tell it: killed with SIGKILL,
 * or ended by an uncaught exception or an unhandled rejection that its log records.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/control/process.js'
import { BIN, type Cluster, newCluster, teardown } from '../harness/cli.js'
import { waitUntil } from '../harness/wait.js'

describe('a pageserver that died', () => {
  let c: Cluster | undefined
  let embedded: ResultPromise | undefined
  /** Loaded into the pageserver's node: SIGUSR2 makes it fail as a bug would, nothing in zenith helps. */
  let crashEnv: Record<string, string>

  const pageserverStatus = async (cl: Cluster) => JSON.parse(await cl.ok('pageserver', 'status', '--json'))
  const waitForDeath = (pid: number) => waitUntil(`pid ${pid} is gone`, async () => !isAlive(pid))
  const logOf = (cl: Cluster) => readFileSync(path.join(cl.repo, 'pageserver', 'pageserver.log'), 'utf8')

  beforeAll(async () => {
    c = await newCluster('died', {}, ['--num-safekeepers', '0'])
    const preload = path.join(c.dir, 'crash-on-sigusr2.mjs')
    writeFileSync(
      preload,
      `process.on('SIGUSR2', () => {
        if (process.env.CRASH_BY === 'rejection') Promise.reject(new Error('rejected on SIGUSR2'))
        else throw new Error('thrown on SIGUSR2')
      })\n`,
    )
    crashEnv = { NODE_OPTIONS: `--import=${preload}`, NO_COLOR: '1' }
  })

  afterAll(async () => {
    embedded?.kill('SIGKILL')
    await teardown(c)
  })

  it('shows a killed pageserver as died with its log, and a cleanly stopped one as stopped', async () => {
    const cl = c!
    await cl.ok('start')
    const { pid } = await pageserverStatus(cl)
    process.kill(pid, 'SIGKILL')
    await waitForDeath(pid)

    const log = path.join(cl.repo, 'pageserver', 'pageserver.log')
    const tail = logOf(cl).trimEnd().split('\n').slice(-10)
    const s = JSON.parse(await cl.ok('status', '--json')).pageservers[0]
    expect(s).toMatchObject({ state: 'died', running: false, pid: null, log_file: log, last_log_lines: tail })
    // After the start line come the first index uploads, whose timing the kill may cut into.
    expect(tail.some((l) => / INFO {2}pageserver started /.test(l))).toBe(true)
    const text = await cl.ok('pageserver', 'status')
    expect(text).toContain(`pageserver died, http 127.0.0.1:${cl.http}`)
    expect(text).toContain(`its log ${log} ends:\n`)
    const remote = `remote storage ${path.join(cl.repo, 'remote_storage')}`
    expect(text.endsWith(`\n  ${tail.at(-1)}\n${remote}`)).toBe(true)
    // The widest label is "storage controller".
    expect(await cl.ok('status')).toMatch(
      new RegExp(`pageserver {10}died, .*\\n {20}its log ${log} ends:\\n`),
    )

    await cl.ok('pageserver', 'start')
    await cl.ok('pageserver', 'stop')
    const stopped = await pageserverStatus(cl)
    expect(stopped.state).toBe('stopped')
    expect(stopped.last_log_lines).toBeUndefined()
    expect((await cl.ok('pageserver', 'status')).trim()).toBe(
      `pageserver stopped, http 127.0.0.1:${cl.http}, pg 127.0.0.1:${cl.pg}\n${remote}`,
    )
    expect(await cl.ok('status')).not.toContain('its log')
  })

  it('logs an uncaught exception with its stack as an ERROR line, and the process exits', async () => {
    const cl = c!
    await execa('node', [BIN, 'pageserver', 'start', '--repo-dir', cl.repo], { env: crashEnv })
    const { pid } = await pageserverStatus(cl)
    process.kill(pid, 'SIGUSR2')
    await waitForDeath(pid)
    const line = logOf(cl).trimEnd().split('\n').at(-1)!
    expect(line).toMatch(
      /^\S+Z ERROR uncaught exception error="thrown on SIGUSR2" stack="Error: thrown on SIGUSR2\\n {4}at .*crash-on-sigusr2\.mjs/,
    )
    const s = await pageserverStatus(cl)
    expect(s.state).toBe('died')
    expect(s.last_log_lines.at(-1)).toBe(line)
    await cl.ok('pageserver', 'stop')
  })

  it('logs an unhandled rejection of an embedded pageserver to its log file, and exits with code 1', async () => {
    const cl = c!
    // --embedded runs every server of the cluster here, so none may run detached: the first test's
    // `zenith start` left the storage controller running.
    await cl.ok('storage-controller', 'stop')
    embedded = execa('node', [BIN, 'start', '--embedded', '--repo-dir', cl.repo], {
      reject: false,
      env: { ...crashEnv, CRASH_BY: 'rejection' },
    })
    await waitUntil('the embedded pageserver answers', async () => (await pageserverStatus(cl)).reachable)
    embedded.kill('SIGUSR2')
    expect((await embedded).exitCode).toBe(1)
    embedded = undefined
    const line = logOf(cl).trimEnd().split('\n').at(-1)!
    expect(line).toMatch(
      /^\S+Z ERROR unhandled rejection error="rejected on SIGUSR2" stack="Error: rejected on SIGUSR2\\n/,
    )
    expect((await pageserverStatus(cl)).state).toBe('died')
  })
})
