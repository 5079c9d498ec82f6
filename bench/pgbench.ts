/**
 * pgbench as the cluster benchmarks run it: tpcb-like at scale 10, 4 clients on 2 threads for 30 s, the
 * same everywhere so that figures of different runs compare; and the compute settings every baseline
 * shares with zenith's computes.
 */
import { runPgBin } from '../src/postgres/pg-bin.js'

export const SCALE = 10
export const CLIENTS = 4
export const SECONDS = 30
export const SAMPLE_MS = 50

/** templates/postgresql.conf's settings that matter for speed, for the plain-Postgres baselines. */
export const COMPUTE_SETTINGS = {
  fsync: true,
  shared_buffers: '128MB',
  wal_consistency_checking: 'all',
  wal_level: 'replica',
  max_wal_senders: 10,
  wal_keep_size: '1GB',
}

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`)
}

export async function pgbenchInit(connstr: string): Promise<void> {
  await runPgBin('pgbench', ['-i', '-q', '-s', String(SCALE), connstr], { timeoutMs: 600_000 })
}

/** The timed run: tps without connection time, transactions, and the average latency of one. */
export async function pgbench(
  connstr: string,
): Promise<{ tps: number; latencyMs: number; transactions: number }> {
  const { stdout } = await runPgBin(
    'pgbench',
    ['-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), connstr],
    { timeoutMs: (SECONDS + 120) * 1000 },
  )
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)
  const lat = /latency average = ([\d.]+) ms/.exec(stdout)
  const done = /number of transactions actually processed: (\d+)/.exec(stdout)
  if (!tps || !lat || !done) throw new Error(`no tps, latency or transactions in pgbench output: ${stdout}`)
  return { tps: Number(tps[1]), latencyMs: Number(lat[1]), transactions: Number(done[1]) }
}
