/**
 * `zenith wal load` against a compute as a user runs it: the built CLI on a cluster with one safekeeper,
 * a compute on main. A WAL-rate target and a transaction-rate target are each reached within ±15 % over a
 * few seconds, what the clients committed is in the tables, the lag of the pageserver and the safekeeper
 * was sampled, and bad targets are refused with one line before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WalLoadReport } from '../../src/control/wal-load-report.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { queryText } from '../harness/sql.js'

const lastLine = (stdout: string) => JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as WalLoadReport

describe('zenith wal load', () => {
  let c: Cluster | undefined
  let main: MainEndpoint

  beforeAll(async () => {
    c = await newCluster('wal-load', {}, ['--num-safekeepers', '1'])
    main = await startMain(c)
  }, 90_000)

  afterAll(() => teardown(c), 30_000)

  it('writes WAL at the target rate, and says how far the pageserver and the safekeeper were behind', async () => {
    const r = lastLine(
      await c!.ok('wal', 'load', '--rate', '1MiB/s', '--duration', '8s', '--workload', 'insert', '--json'),
    )
    expect(r).toMatchObject({
      mode: 'compute',
      branch: 'main',
      target_wal_mib_s: 1,
      target_tps: null,
      errors: 0,
    })
    expect(r.achieved_wal_mib_s).toBeGreaterThanOrEqual(0.85)
    expect(r.achieved_wal_mib_s).toBeLessThanOrEqual(1.15)
    expect(r.wal_bytes).toBeGreaterThan(6 * 1024 * 1024)
    expect(r.lag_samples).toBeGreaterThan(20)
    expect(r.ingest_lag_bytes_max).toBeGreaterThanOrEqual(r.ingest_lag_bytes_p99)
    expect(r.ingest_lag_bytes_p99).toBeGreaterThanOrEqual(r.ingest_lag_bytes_p50)
    expect(r.safekeeper_lag_bytes_p99).not.toBeNull()
    expect(r.commit_latency_ms_p99!).toBeGreaterThanOrEqual(r.commit_latency_ms_p50!)
    // Every commit it counted is a row; the ones in flight at the end may have committed too.
    const rows = Number(await queryText(main.connstr, 'SELECT count(*) FROM zenith_load_insert'))
    expect(rows).toBeGreaterThanOrEqual(r.transactions)
    expect(rows).toBeLessThanOrEqual(r.transactions + 4)
  }, 60_000)

  it("commits the target transaction rate of pgbench's transaction, and prints a summary", async () => {
    const out = await c!.ok('wal', 'load', '--tps', '40', '--duration', '5s', '--workload', 'pgbench')
    expect(out).toMatch(/^WAL load on branch main \(\w{32}\) for 5\.\d s, target 40 tps$/m)
    const tps = Number(/commits +\d+ \(([\d.]+) tps\)/.exec(out)![1])
    expect(tps).toBeGreaterThanOrEqual(34)
    expect(tps).toBeLessThanOrEqual(46)
    expect(out).toMatch(/pageserver lag p50 \d+ KiB, p99 \d+ KiB, max \d+ KiB/)
    expect(out).toMatch(/safekeeper lag p50/)
    expect(out).toMatch(/errors +0$/m)
    const history = Number(await queryText(main.connstr, 'SELECT count(*) FROM pgbench_history'))
    expect(history).toBeGreaterThanOrEqual(Math.floor(tps * 5 * 0.95))
  }, 90_000)

  it.concurrent.each([
    [['--rate', '20'], '"20" is not a rate'],
    [['--rate', '20MB/s'], '"20MB/s" is not a rate'],
    [['--tps', '10', '--duration', '5'], '"5" is not a duration'],
    [['--tps', '10', '--duration', '0s'], '--duration must be longer than 0'],
    [['--tps', '0'], 'Expected an integer greater than or equal to 1'],
    [
      ['--tps', '10', '--workload', 'tpcc'],
      'Expected --workload=tpcc to be one of: insert, update, mixed, pgbench',
    ],
    [['--tps', '10', '--branch', 'nope'], 'unknown branch "nope"'],
  ])('refuses %j with one line naming what is wrong', async (args, message) => {
    const r = await c!.zenith('wal', 'load', ...args)
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr.split('\n')[0]).toContain(message)
    expect(r.stdout).toBe('')
  })

  it('refuses a branch whose compute is not running, saying how to start it', async () => {
    await c!.ok('timeline', 'branch', '--branch-name', 'dev')
    const r = await c!.zenith('wal', 'load', '--branch', 'dev', '--tps', '10')
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toContain('no compute of branch dev is running')
    expect(r.stderr).toContain('zenith pg start dev')
  })
})
