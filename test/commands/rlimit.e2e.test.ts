/**
 * Issue 14's address-space goal: the whole cluster — the CLI, the storage controller, the pageserver,
 * the safekeeper and the compute — started under `ulimit -v 2097152` (2 GiB of RLIMIT_AS, which every
 * child inherits) runs pgbench at scale 10 for 30 s, and at the end every server is still up, answers
 * /metrics, and reports a VSZ below 2 GiB there. Small layers and a low compaction threshold make the
 * pageserver flush and compact in worker threads during the run, which is where it used to die.
 */
import { readFileSync } from 'node:fs'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/control/process.js'
import { parseMetrics } from '../../src/lib/metrics.js'
import { runPgBin } from '../../src/postgres/pg-bin.js'
import { BIN, type CliResult, type Cluster, newCluster, teardown } from '../harness/cli.js'

const LIMIT_KIB = 2 * 1024 * 1024

/**
 * The CLI as a user runs it after `ulimit -v 2097152` in their shell. NODE_ENV is not the test runner's
 * "test", under which oclif loads the TypeScript sources through tsx, whose loader instantiates
 * WebAssembly (10 GiB of reservation) and so cannot start under the limit at all.
 */
async function limited(c: Cluster, ...args: string[]): Promise<CliResult> {
  const r = await execa(
    'bash',
    ['-c', `ulimit -v ${LIMIT_KIB} && exec node "$0" "$@"`, BIN, ...args, '--repo-dir', c.repo],
    { reject: false, env: { NO_COLOR: '1', NODE_ENV: 'production' }, timeout: 120_000 },
  )
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
}

async function limitedOk(c: Cluster, ...args: string[]): Promise<string> {
  const r = await limited(c, ...args)
  // Without a crash's stack frames, which the test runner would take for this test's own.
  const stderr = r.stderr.replace(/^\s+at .*\n?/gm, '')
  if (r.exitCode !== 0) throw new Error(`zenith ${args.join(' ')} failed (${r.exitCode}): ${stderr}`)
  return r.stdout
}

interface Server {
  name: string
  pid: number
  http: string
}

async function servers(c: Cluster): Promise<Server[]> {
  const s = JSON.parse(await limitedOk(c, 'status', '--json')) as {
    pageservers: { id: number; pid: number; http: string }[]
    safekeepers: { id: number; pid: number; http: string }[]
    storage_controller: { pid: number; http: string }
  }
  return [
    ...s.pageservers.map((p) => ({ name: `pageserver ${p.id}`, pid: p.pid, http: p.http })),
    ...s.safekeepers.map((p) => ({ name: `safekeeper ${p.id}`, pid: p.pid, http: p.http })),
    { name: 'storage controller', pid: s.storage_controller.pid, http: s.storage_controller.http },
  ]
}

async function metricsOf(s: Server): Promise<Map<string, number>> {
  const res = await fetch(`http://${s.http}/metrics`, { signal: AbortSignal.timeout(10_000) })
  expect(res.status, `${s.name} /metrics`).toBe(200)
  return new Map(
    parseMetrics(await res.text()).map((m) => [
      `${m.name}${m.labels.kind ? `/${m.labels.kind}` : ''}`,
      m.value,
    ]),
  )
}

/** RLIMIT_AS of a running process as /proc shows it, in bytes. */
function addressLimit(pid: number): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').match(/^Max address space\s+(\S+)/m)
  return Number(line?.[1])
}

describe('a cluster under a 2 GiB address-space limit', () => {
  let c: Cluster

  beforeAll(async () => {
    c = await newCluster('rlimit', {}, [
      '-c',
      'checkpoint_distance=32MiB',
      '-c',
      'compaction_threshold=3',
      '-c',
      'compaction_period=2s',
    ])
  })
  afterAll(() => teardown(c))

  it('runs pgbench at scale 10 for 30 s with every process up and below 2 GiB of VSZ', async () => {
    await limitedOk(c, 'start')
    await limitedOk(c, 'pg', 'start', 'main')
    const all = await servers(c)
    expect(all.map((s) => s.name)).toEqual(['pageserver 1', 'safekeeper 1', 'storage controller'])
    // The servers are the limited CLI's children: the limit is theirs too.
    for (const s of all) expect(addressLimit(s.pid), s.name).toBe(LIMIT_KIB * 1024)

    const [{ connstr }] = JSON.parse(await limitedOk(c, 'pg', 'list', '--json')) as { connstr: string }[]
    await runPgBin('pgbench', ['-i', '-q', '-s', '10', connstr], { timeoutMs: 120_000 })
    const bench = await runPgBin('pgbench', ['-n', '-c', '4', '-T', '30', connstr], { timeoutMs: 90_000 })
    expect(bench.stdout).toMatch(/number of failed transactions: 0 /)

    expect((await servers(c)).map((s) => s.pid)).toEqual(all.map((s) => s.pid))
    for (const s of all) {
      expect(isAlive(s.pid), `${s.name} (pid ${s.pid}) is alive`).toBe(true)
      const m = await metricsOf(s)
      const vsz = m.get('process_virtual_memory_bytes') ?? Number.NaN
      expect(vsz, `${s.name} VSZ`).toBeLessThan(LIMIT_KIB * 1024)
    }
    // The run went through the worker threads: frozen layers flushed, L0s compacted into L1 deltas.
    const ps = await metricsOf(all[0])
    expect(ps.get('pageserver_background_task_runs_total/flush') ?? 0).toBeGreaterThan(0)
    expect(ps.get('pageserver_layers/delta') ?? 0).toBeGreaterThan(0)
    expect(await limitedOk(c, 'stop')).toMatch(/pageserver stopped/)
  }, 180_000)
})
