/**
 * `zenith dashboard` on a live cluster (one safekeeper, two pageservers, main with a writer and a branch
 * `feature`): in a real terminal under tmux it shows main's LSN moving while a workload writes, Tab
 * selects the other timeline and q ends it; `--json` before and after `tenant migrate --to 2` shows
 * which pageserver serves the tenant and asks only that one for timelines and layers; `--once` and the
 * refusal without a terminal through the plain CLI.
 */
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DashboardFrame } from '../../src/control/dashboard-frame.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { BIN, type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { query } from '../harness/sql.js'
import { waitFor } from '../harness/wait.js'

const run = promisify(execFile)
// A tmux server of our own: other tests or users' sessions are never touched.
const SOCKET = `zenith-dash-${process.pid}`
const SESSION = 'dash'
const tmux = async (...args: string[]) => (await run('tmux', ['-L', SOCKET, ...args])).stdout

let c: Cluster
let main: MainEndpoint

beforeAll(async () => {
  c = await newCluster('dashboard', {}, ['--num-safekeepers', '1'])
  main = await startMain(c)
  await c.ok('pageserver', 'start', '2')
  await c.ok('timeline', 'branch', '--branch-name', 'feature')
  await query(main.connstr, 'CREATE TABLE t (i int, pad text)')
}, 120_000)

afterAll(async () => {
  await tmux('kill-server').catch(() => {})
  await teardown(c)
}, 60_000)

const mainLsnOf = (screen: string): number | null => {
  const m = /[▶ ] main\s+([0-9A-F]+\/[0-9A-F]+)/.exec(screen)
  return m ? parseLsn(m[1]) : null
}

describe('zenith dashboard', () => {
  it('runs in a terminal: main moves while a workload writes, Tab selects feature, q quits', async () => {
    const statusFile = path.join(c.dir, 'dashboard.status')
    await tmux(
      'new-session',
      '-d',
      '-s',
      SESSION,
      '-x',
      '160',
      '-y',
      '50',
      // CI set, as on a CI machine: ink would then draw only at exit, and the dashboard must not let it.
      // SIGUSR2 makes node write a report with its JS stack: what a wait that fails shows. The shell
      // writes the exit status: tmux has been seen to leave a pane whose process had exited undead,
      // its process a zombie, for longer than the test waits.
      `CI=true NO_COLOR=1 node --report-on-signal --report-signal=SIGUSR2 --report-directory=${c.dir} ${BIN} dashboard --repo-dir ${c.repo} --interval 500; echo $? > ${statusFile}`,
    )
    await tmux('set-option', '-t', SESSION, 'remain-on-exit', 'on')
    const screen = () => tmux('capture-pane', '-p', '-t', SESSION)
    // A wait that ends without what it waited for says what the screen showed instead, and what the
    // dashboard process was doing: its CPU time over a second and its JS stack.
    const waitOnScreen = <T>(what: string, fn: () => Promise<T | undefined>, ms: number) =>
      waitFor(what, fn, ms).catch(async (err: Error) => {
        throw new Error(`${err.message}; the screen:\n${await screen()}\n${await processReport()}`)
      })
    const processReport = async (): Promise<string> => {
      const shell = Number((await tmux('display-message', '-p', '-t', SESSION, '#{pane_pid}')).trim())
      let pid = shell
      try {
        pid = Number(readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim().split(' ')[0])
      } catch {
        return `the dashboard's shell ${shell} is gone`
      }
      const cpu = () => {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
        return { state: f[0], ticks: Number(f[11]) + Number(f[12]) }
      }
      try {
        const a = cpu()
        await new Promise((r) => setTimeout(r, 1000))
        const b = cpu()
        process.kill(pid, 'SIGUSR2')
        await new Promise((r) => setTimeout(r, 2000))
        const report = readdirSync(c.dir).find((f) => f.startsWith('report.') && f.endsWith('.json'))
        const stack = report
          ? (JSON.parse(readFileSync(path.join(c.dir, report), 'utf8')) as { javascriptStack?: unknown })
              .javascriptStack
          : 'no report written'
        return `dashboard pid ${pid}: state ${b.state}, ${b.ticks - a.ticks} CPU ticks in 1 s; JS stack: ${JSON.stringify(stack)}`
      } catch (e) {
        return `dashboard pid ${pid}: ${(e as Error).message}`
      }
    }
    const first = await waitOnScreen(
      'main and its LSN on the screen',
      async () => {
        const s = await screen()
        return /▶ main/.test(s) ? (mainLsnOf(s) ?? undefined) : undefined
      },
      15_000,
    )
    expect(await screen()).toMatch(/compute main\s+running/)

    await query(main.connstr, "INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i")
    const later = await waitOnScreen(
      'a higher LSN of main',
      async () => {
        const lsn = mainLsnOf(await screen())
        return lsn !== null && lsn > first ? lsn : undefined
      },
      15_000,
    )
    expect(later).toBeGreaterThan(first + 20000 * 200)

    // The layers view draws main's layer map: its legend and the last_record line are the drawing's own.
    await tmux('send-keys', '-t', SESSION, 'l')
    const layersView = await waitOnScreen(
      'the layer map',
      async () => {
        const text = await screen()
        return text.includes('░ in-memory') && text.includes('last record') ? text : undefined
      },
      10_000,
    )
    expect(layersView).toMatch(/[▓▒█]/)
    await tmux('send-keys', '-t', SESSION, 'l')
    // Keys sent together can reach the dashboard as one read: wait for this one to be taken.
    await waitOnScreen(
      'the main view again',
      async () => ((await screen()).includes('░ in-memory') ? undefined : true),
      10_000,
    )

    await tmux('send-keys', '-t', SESSION, 'Tab')
    await waitOnScreen(
      'feature selected',
      async () => ((await screen()).includes('▶ feature') ? true : undefined),
      10_000,
    )
    const s = await screen()
    expect(s).toMatch(/ {2}main\s+[0-9A-F]+\//)
    expect(s).toMatch(/timeline feature \([0-9a-f]{32}\)/)

    await tmux('send-keys', '-t', SESSION, 'q')
    const status = await waitOnScreen(
      'the dashboard to exit',
      async () => {
        try {
          return readFileSync(statusFile, 'utf8').trim() || undefined
        } catch {
          return undefined
        }
      },
      15_000,
    )
    expect(status).toBe('0')
  }, 60_000)

  it('--json prints the frame behind the screen, within a few requests per process', async () => {
    const r = await c.zenith('dashboard', '--json', '--interval', '200', '--branch', 'feature')
    expect(r.exitCode).toBe(0)
    const f = JSON.parse(r.stdout) as DashboardFrame
    expect(f.processes.map((p) => [p.name, p.state])).toEqual([
      ['pageserver', 'running'],
      ['pageserver 2', 'running'],
      ['safekeeper 1', 'running'],
      ['compute main', 'running'],
    ])
    expect(f.timelines.map((t) => [t.branch, t.pageserver_id])).toEqual([
      ['main', 1],
      ['feature', 1],
    ])
    expect(f.figures_pageserver).toEqual({ id: 1, name: 'pageserver' })
    const ladder = f.timelines[0].ladder
    expect(ladder.map((rung) => rung.name)).toEqual([
      'compute_insert',
      'compute_flush',
      'safekeeper_flush',
      'commit',
      'last_record',
      'disk_consistent',
      'remote_consistent',
      'gc_cutoff',
    ])
    expect(ladder.every((rung) => rung.lsn !== null)).toBe(true)
    // --branch feature: the layers fetched are feature's.
    expect(f.layers?.timeline_id).toBe(f.timelines[1].timeline_id)
    expect(f.rates.ingest_bytes_per_s).not.toBeNull()
    // The series behind the memory and tasks panels, from the live pageserver.
    expect(f.memory.budget_bytes).toBe(128 * 1024 * 1024)
    expect(f.memory.hit_ratio).toBeGreaterThan(0)
    const metrics = await (await fetch(`http://127.0.0.1:${c.http}/metrics`)).text()
    expect(metrics).toMatch(/^pageserver_page_cache_hits_total \d+$/m)
    expect(metrics).toMatch(/^pageserver_page_cache_misses_total \d+$/m)
    expect(metrics).toContain('# TYPE pageserver_background_task_runs_total counter')
    // The tenant's pageserver: /v1/tenant, its timelines, /metrics and one /layer. Pageserver 2 holds
    // nothing: /v1/tenant (a tenant being moved is listed there too, and must be seen to be skipped)
    // and /metrics (its figures are shown once the selection is one of its tenants). One to each other.
    expect(f.requests).toEqual({ pageserver: 4, 'pageserver 2': 2, 'safekeeper 1': 1, 'compute main': 1 })
  }, 30_000)

  it('after tenant migrate --to 2 takes the timelines, layers and figures from pageserver 2', async () => {
    await c.ok('tenant', 'migrate', '--to', '2')
    const r = await c.zenith('dashboard', '--json', '--interval', '200', '--branch', 'feature')
    expect(r.exitCode).toBe(0)
    const f = JSON.parse(r.stdout) as DashboardFrame
    expect(f.timelines.map((t) => [t.branch, t.pageserver_id])).toEqual([
      ['main', 2],
      ['feature', 2],
    ])
    expect(f.figures_pageserver).toEqual({ id: 2, name: 'pageserver 2' })
    expect(f.layers?.timeline_id).toBe(f.timelines[1].timeline_id)
    // Pageserver 2's ladder, remote_consistent on it.
    const remote = f.timelines[0].ladder.find((rung) => rung.name === 'remote_consistent')
    expect(remote?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    expect(f.memory.budget_bytes).toBe(128 * 1024 * 1024)
    // --json's first sample has no selection (figures of pageserver 1), its second has feature's: the
    // rates are pageserver 2's own, measured from its counters in the first sample.
    expect(f.rates.ingest_bytes_per_s).not.toBeNull()
    expect(f.rate_history.ingest_bytes_per_s).toHaveLength(1)
    expect(f.requests).toEqual({ pageserver: 2, 'pageserver 2': 4, 'safekeeper 1': 1, 'compute main': 1 })

    const show = JSON.parse(await c.ok('timeline', 'show', 'main', '--json')) as { pageserver_id: number }
    expect(show.pageserver_id).toBe(2)
    const text = await c.ok('timeline', 'show', 'main')
    expect(text).toMatch(/^pageserver\s+2$/m)
    expect(text).toMatch(/^remote_consistent_lsn\s+[0-9A-F]+\/[0-9A-F]+/m)
  }, 120_000)

  it('--once prints one frame as plain text; without a terminal it says so in one line', async () => {
    const r = await c.zenith('dashboard', '--once', '--interval', '200')
    expect(r.exitCode).toBe(0)
    // The tenant is on pageserver 2 since the test before.
    expect(r.stdout).toMatch(/▶ main\s+[0-9A-F]+\/[0-9A-F]+\s+ps 2/)
    expect(r.stdout).toMatch(/last_record\s+[0-9A-F]+\//)
    expect(r.stdout).toContain('ingest and GetPage')
    expect(r.stdout.includes('\u001B[')).toBe(false)

    const plain = await c.zenith('dashboard')
    expect(plain.exitCode).not.toBe(0)
    expect(plain.stdout).toBe('')
    expect(plain.stderr.trim()).toBe('Error: zenith dashboard needs a terminal; use --once or --json')
  }, 30_000)
})
