/**
 * The fault soak of issue 10: writers commit rows and record every commit they saw acknowledged while,
 * every few seconds, one process of the cluster is SIGKILLed — a safekeeper, the pageserver, the compute,
 * or the compute with its datadir deleted — and brought back through the CLI. At the end every
 * acknowledged row is there, through the compute and through a compute rebuilt from the pageserver alone,
 * and the pageserver has caught up with the compute. Three runs, one after another: 3 safekeepers, 1, and
 * direct mode (no safekeepers, no datadir loss: the datadir is the only other copy of unflushed WAL).
 *
 * Seeded: each run prints its seed and every fault. `ZENITH_SOAK_SEED=<n>` replays a run's faults (the
 * timing of the processes still varies), `-t '<run name>'` picks one run; `ZENITH_SOAK_FAULTS` and
 * `ZENITH_SOAK_SECONDS` change how many faults a run injects at least and for how long at least.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  endpointDataDir,
  endpointLogFile,
  pageserverLogFile,
  pageserverPidFile,
  safekeeperClientOf,
  safekeeperConfigOf,
  safekeeperLogFile,
  safekeeperPidFile,
} from '../../src/control/layout.js'
import { isAlive, lastLogLines, readPidFile } from '../../src/control/process.js'
import { formatSize } from '../../src/lib/units.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, freePortBase, newCluster, teardown } from '../harness/cli.js'
import { randomInt } from '../harness/random.js'
import { query } from '../harness/sql.js'
import { sleep, waitFor, waitUntil } from '../harness/wait.js'
import { AckWriters } from '../harness/writers.js'

type FaultKind = 'safekeeper' | 'pageserver' | 'compute' | 'compute+datadir'

interface Run {
  name: string
  safekeepers: 0 | 1 | 3
  kinds: FaultKind[]
}

const RUNS: Run[] = [
  {
    name: '3 safekeepers',
    safekeepers: 3,
    kinds: ['safekeeper', 'pageserver', 'compute', 'compute+datadir'],
  },
  { name: '1 safekeeper', safekeepers: 1, kinds: ['safekeeper', 'pageserver', 'compute', 'compute+datadir'] },
  { name: 'direct mode', safekeepers: 0, kinds: ['pageserver', 'compute'] },
]

const MIN_FAULTS = Number(process.env.ZENITH_SOAK_FAULTS ?? 20)
const MIN_SECONDS = Number(process.env.ZENITH_SOAK_SECONDS ?? 60)
const WRITERS = 3
/** Every writer commits again within this after a fault is repaired; longer is a stall, a bug. */
const RECOVERY_MS = 30_000
/** With a quorum left (or safekeepers while the pageserver is down), every writer commits within this. */
const DURING_MS = 5_000
/** Each fault takes a few seconds to inject and repair, more on a loaded machine. */
const RUN_TIMEOUT_MS = Math.max(300_000, MIN_FAULTS * 15_000)

const baseSeed = Number(process.env.ZENITH_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))

const clusters: Cluster[] = []
afterEach(async () => {
  for (const c of clusters.splice(0)) await teardown(c)
})
const summaries: string[] = []
afterAll(() => {
  if (summaries.length > 0)
    console.log(`fault soak, ZENITH_SOAK_SEED=${baseSeed}:\n  ${summaries.join('\n  ')}`)
})

describe.sequential('fault soak: no acknowledged commit lost', () => {
  RUNS.forEach((run, i) => {
    it(
      run.name,
      async () => {
        await soak(run, baseSeed + i)
      },
      RUN_TIMEOUT_MS,
    )
  })
})

/** The pids of `pid` and every process below it (a postmaster's backends, walsenders, …). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // Gone meanwhile.
    }
  }
  const all = [pid]
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]) ?? []))
  return all
}

/** The live process a pid file names: the fault before was repaired, so there must be one. */
function pidOf(file: string): number {
  const pid = readPidFile(file)
  if (pid === null || !isAlive(pid)) throw new Error(`${file} names no running process (${pid})`)
  return pid
}

/** SIGKILLs the processes and waits until every one is gone. */
async function killAll(pids: number[], what: string): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  await waitUntil(`${what} (pids ${pids.join(', ')}) to be gone`, () => pids.every((p) => !isAlive(p)))
}

async function soak(run: Run, seed: number): Promise<void> {
  const tag = `[soak ${run.name}, seed ${seed}]`
  const say = (line: string) => console.log(`${tag} ${line}`)
  say(`reproduce with ZENITH_SOAK_SEED=${seed - RUNS.indexOf(run)} -t '${run.name}'`)
  const random = randomInt(seed)
  const started = Date.now()
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1)

  const pgBase = await freePortBase(2 * Math.max(1, run.safekeepers))
  const c = await newCluster(`soak-${run.safekeepers}`, {}, [
    '--num-safekeepers',
    String(run.safekeepers),
    ...(run.safekeepers > 0
      ? [
          '--safekeeper-pg-port-base',
          String(pgBase),
          '--safekeeper-http-port-base',
          String(pgBase + run.safekeepers),
        ]
      : []),
  ])
  clusters.push(c)
  await c.ok('start')
  await c.ok('pg', 'start', 'main')
  const [main] = JSON.parse(await c.ok('timeline', 'list', '--json')) as {
    tenant_id: string
    timeline_id: string
  }[]
  const pgdata = endpointDataDir(c.repo, main.tenant_id, 'main')
  let [{ connstr }] = JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[]
  const timeline = async () => {
    const r = await fetch(
      `http://127.0.0.1:${c.http}/v1/tenant/${main.tenant_id}/timeline/${main.timeline_id}`,
    )
    return (await r.json()) as { last_record_lsn: string; walreceiver_status: string }
  }
  await query(
    connstr,
    'CREATE TABLE t (writer int, seq int, at timestamptz DEFAULT now(), pad text, PRIMARY KEY (writer, seq))',
  )

  const writers = new AckWriters(
    connstr,
    WRITERS,
    'INSERT INTO t (writer, seq, pad) VALUES ($1, $2, repeat(md5(random()::text), 8))',
  )
  const faults: Record<FaultKind, number> = { safekeeper: 0, pageserver: 0, compute: 0, 'compute+datadir': 0 }
  let n = 0
  const zenithLogs = () => [
    pageserverLogFile(c.repo, 1),
    ...Array.from({ length: run.safekeepers }, (_, k) => safekeeperLogFile(c.repo, k + 1)),
  ]
  const diagnose = () => {
    for (const f of [endpointLogFile(c.repo, main.tenant_id, 'main'), ...zenithLogs()])
      say(`${f} ends:\n  ${lastLogLines(f, 15).join('\n  ')}`)
  }

  /** Every writer acknowledges a new commit within `ms`. */
  const everyWriterCommits = async (what: string, ms: number) => {
    const before = writers.acked()
    try {
      await waitUntil(
        `every writer to commit ${what}`,
        () => writers.acked().every((a, w) => a > before[w]),
        ms,
      )
    } catch (err) {
      throw new Error(
        `${(err as Error).message}: acknowledged per writer ${before.join(', ')} before, ${writers.acked().join(', ')} now; ` +
          `last errors: ${writers.lastErrors().join('; ')}`,
      )
    }
  }

  /**
   * Why acks are held back, or null: each safekeeper delays its acks while its pageserver feedback is
   * behind commit_lsn by more than max_replication_write_lag (backpressure, by design), and commits stop
   * once fewer than a majority of those that are up still ack.
   */
  const backpressure = async (): Promise<string | null> => {
    const lags: string[] = []
    let acking = 0
    for (let id = 1; id <= run.safekeepers; id++) {
      const limit = safekeeperConfigOf(c.repo, id).maxReplicationWriteLag
      const d = await safekeeperClientOf(c.repo, id)
        .timeline(main.tenant_id, main.timeline_id)
        .catch(() => null)
      if (!d) continue
      const fb = d.pageserver_feedback
      const lag = fb ? parseLsn(d.commit_lsn) - parseLsn(fb.last_received_lsn) : 0
      lags.push(`safekeeper ${id} ${formatSize(lag)} behind`)
      if (lag <= limit) acking++
    }
    return acking < Math.floor(run.safekeepers / 2) + 1 ? `pageserver feedback: ${lags.join(', ')}` : null
  }
  let heldBack = 0
  /** With a quorum of safekeepers up, every writer goes on committing, unless backpressure holds them. */
  const keepsCommitting = async (what: string) => {
    try {
      await everyWriterCommits(`with ${what}`, DURING_MS)
    } catch (err) {
      const why = await backpressure()
      if (why === null) throw err
      heldBack++
      say(`  no commits with ${what}: backpressure, ${why}`)
    }
  }

  try {
    writers.start()
    await everyWriterCommits('at the start', RECOVERY_MS)
    while (n < MIN_FAULTS || Date.now() - started < MIN_SECONDS * 1000) {
      const kind = run.kinds[random(run.kinds.length)]
      n++
      faults[kind]++
      const at = Date.now()
      const ackedBefore = writers.total()
      /** Nothing may be acknowledged while the only copy a commit waits for is gone. */
      const noCommitsWhileDown = async (what: string) => {
        await sleep(100)
        const down = writers.total()
        await sleep(300 + random(1000))
        expect(writers.total(), `commits acknowledged with ${what} down (fault #${n})`).toBe(down)
      }
      let target: string
      let repair: string[]
      if (kind === 'safekeeper') {
        const id = 1 + random(run.safekeepers)
        const pid = pidOf(safekeeperPidFile(c.repo, id))
        target = `safekeeper ${id} (pid ${pid})`
        say(`#${n} t=${elapsed()}s kill ${target}`)
        await killAll([pid], target)
        // Two of three are a quorum; the only one is the whole quorum.
        if (run.safekeepers === 3) await keepsCommitting(`${target} down`)
        else await noCommitsWhileDown(target)
        repair = ['safekeeper', 'start', String(id)]
      } else if (kind === 'pageserver') {
        const pid = pidOf(pageserverPidFile(c.repo, 1))
        target = `the pageserver (pid ${pid})`
        say(`#${n} t=${elapsed()}s kill ${target}`)
        await killAll([pid], target)
        // The safekeepers acknowledge commits; in direct mode the pageserver is the synchronous standby.
        if (run.safekeepers > 0) await keepsCommitting(`${target} down`)
        else await noCommitsWhileDown(target)
        // `zenith start` starts only what is not running: both ways of bringing it back.
        repair = random(2) === 0 ? ['start'] : ['pageserver', 'start']
      } else {
        const pid = pidOf(path.join(pgdata, 'postmaster.pid'))
        target = `the compute (postmaster ${pid})${kind === 'compute+datadir' ? ' and its datadir' : ''}`
        say(`#${n} t=${elapsed()}s kill ${target}`)
        await killAll(processTree(pid), target)
        if (kind === 'compute+datadir') await rm(pgdata, { recursive: true, force: true })
        await sleep(random(1000))
        repair = ['pg', 'start', 'main']
      }
      const down = Date.now()
      const out = await c.ok(...repair)
      const repaired = Date.now()
      if (kind.startsWith('compute')) say(`  ${out.trim().split('\n').join(' | ')}`)
      await everyWriterCommits(`after fault #${n}, ${kind}`, RECOVERY_MS)
      const secs = (from: number, to: number) => `${((to - from) / 1000).toFixed(1)} s`
      say(
        `#${n} ${kind}: down ${secs(at, down)}, \`zenith ${repair.join(' ')}\` ${secs(down, repaired)}, ` +
          `every writer commits ${secs(repaired, Date.now())} later; ${writers.total() - ackedBefore} commits meanwhile`,
      )
      await sleep(300 + random(1200))
    }
    await writers.stop()
    say(`faults done at t=${elapsed()}s; checking`)

    // The pageserver catches up with everything the compute has flushed.
    const [{ flush }] = await query<{ flush: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS flush')
    await waitUntil(
      `the pageserver to reach the compute's flush LSN ${flush}`,
      async () => parseLsn((await timeline()).last_record_lsn) >= parseLsn(flush),
      RECOVERY_MS,
    )
    await waitUntil(
      'the WAL receiver to stream',
      async () => (await timeline()).walreceiver_status === 'streaming',
    )
    await checkRows(connstr, writers, 'the compute')

    // A compute built from the pageserver alone: its copy of the data is what is checked.
    await c.ok('pg', 'stop', 'main', '--destroy')
    await c.ok('pg', 'start', 'main')
    ;[{ connstr }] = JSON.parse(await c.ok('pg', 'list', '--json')) as { connstr: string }[]
    await checkRows(connstr, writers, 'a compute rebuilt from the pageserver')

    expect(errorLines(zenithLogs()).slice(0, 20), 'ERROR lines in the logs').toEqual([])

    const byKind = run.kinds.map((k) => `${k} ${faults[k]}`).join(', ')
    const summary =
      `${run.name} (seed ${seed}): ${n} faults (${byKind}); ${writers.total()} commits acknowledged of ` +
      `${writers.attempts()} attempted (${writers.failures()} statements or connections failed); ` +
      (run.safekeepers > 0 ? `${heldBack} faults with commits held by backpressure; ` : '') +
      `${elapsed()} s`
    summaries.push(summary)
    say(`SUMMARY: ${summary}`)
    expect(n).toBeGreaterThanOrEqual(MIN_FAULTS)
  } catch (err) {
    say(`FAILED at t=${elapsed()}s after fault #${n}: ${(err as Error).message}`)
    diagnose()
    throw err
  } finally {
    await writers.stop()
  }
}

/** Every acknowledged row is there, and every row there was attempted. */
async function checkRows(connstr: string, writers: AckWriters, where: string): Promise<void> {
  const rows = await waitFor(`${where} to answer`, () =>
    query<{ writer: number; seq: number }>(connstr, 'SELECT writer, seq FROM t').catch(() => undefined),
  )
  const present = new Set(rows.map((r) => `${r.writer}/${r.seq}`))
  const missing = writers.ackedRows().filter((k) => !present.has(k))
  expect(
    { missing: missing.length, first: missing.slice(0, 20) },
    `acknowledged commits (writer/seq) missing from ${where}`,
  ).toEqual({ missing: 0, first: [] })
  const attempted = new Set(writers.attemptedRows())
  expect(
    rows.filter((r) => !attempted.has(`${r.writer}/${r.seq}`)).slice(0, 20),
    `rows in ${where} never written`,
  ).toEqual([])
}

/** ERROR lines of zenith's own logs: a fault shows as warnings (a peer gone, a connection lost), never as one. */
function errorLines(files: string[]): string[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => /^\S+Z ERROR /.test(l))
      .map((l) => `${path.basename(path.dirname(f))}: ${l}`),
  )
}
