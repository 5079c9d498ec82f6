/**
 * The built CLI as a user runs it, for end-to-end tests: `node bin/run.js` against a temp repo dir with
 * the pageserver and computes on ports free at run time, NO_COLOR set so output is plain text.
 */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { DEFAULT_SAFEKEEPERS } from '../../src/control/cluster.js'
import { freePort, portInUse } from '../../src/control/process.js'
import { makeTempDir } from './postgres.js'

export const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/run.js')

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
}

export interface Cluster {
  dir: string
  repo: string
  http: number
  pg: number
  zenith(...args: string[]): Promise<CliResult>
  /** Runs a command that must succeed; its stdout. */
  ok(...args: string[]): Promise<string>
  /** The HTTP API of safekeeper `id`, `http://127.0.0.1:port`. */
  safekeeperHttp(id: number): string
}

/** The endpoint `pg start main` made, as `pg list --json` shows it, and its timeline's API path. */
export interface MainEndpoint {
  connstr: string
  tenantId: string
  timelineId: string
  /** `/v1/tenant/<t>/timeline/<tl>`, on the pageserver's and the safekeepers' APIs alike. */
  tlPath: string
}

/** `zenith start`, then `pg start main`: the cluster running with its writer on the main branch. */
export async function startMain(c: Cluster): Promise<MainEndpoint> {
  await c.ok('start')
  await c.ok('pg', 'start', 'main')
  const [ep] = JSON.parse(await c.ok('pg', 'list', '--json')) as {
    connstr: string
    tenant_id: string
    timeline_id: string
  }[]
  return {
    connstr: ep.connstr,
    tenantId: ep.tenant_id,
    timelineId: ep.timeline_id,
    tlPath: `/v1/tenant/${ep.tenant_id}/timeline/${ep.timeline_id}`,
  }
}

/** Runs the CLI once; `env` adds to (or, with undefined, removes from) the environment. */
export async function runZenith(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], { reject: false, env: { NO_COLOR: '1', ...env } })
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/**
 * A repo dir made by `zenith init` (the pageserver is not left running); `initArgs` go to init too.
 * Safekeepers (init's default count unless `--num-safekeepers` is given) and the storage controller
 * get free ports unless `initArgs` name their ports: the defaults are fixed ports that another run may hold.
 */
export async function newCluster(
  name: string,
  env: Record<string, string> = {},
  initArgs: string[] = [],
): Promise<Cluster> {
  const dir = await makeTempDir(`zenith-e2e-${name}-`)
  const repo = path.join(dir, 'repo')
  // Pageserver N listens on the first one's ports plus N-1: the ports of pageservers 2 and 3 are free too.
  const [http, pg, computeBase] = [(await freePortBase(3)) + 1, (await freePortBase(3)) + 1, await freePort()]
  const count = initArgs.includes('--num-safekeepers')
    ? Number(initArgs[initArgs.indexOf('--num-safekeepers') + 1])
    : DEFAULT_SAFEKEEPERS
  const portArgs: string[] = []
  const given = initArgs.indexOf('--safekeeper-http-port-base')
  let httpBase = given >= 0 ? Number(initArgs[given + 1]) : 0
  if (count > 0 && !initArgs.includes('--safekeeper-pg-port-base')) {
    // One run of free ports: the libpq ports of safekeepers 1..count, then their HTTP ports.
    const base = await freePortBase(2 * count)
    httpBase = base + count
    portArgs.push('--safekeeper-pg-port-base', String(base), '--safekeeper-http-port-base', String(httpBase))
  }
  // The storage controller's default port, 1234, is fixed: another run may hold it.
  if (!initArgs.includes('--storage-controller-port'))
    portArgs.push('--storage-controller-port', String(await freePort()))
  const zenith = (...args: string[]) => runZenith([...args, '--repo-dir', repo], env)
  const ok = async (...args: string[]) => {
    const r = await zenith(...args)
    if (r.exitCode !== 0) throw new Error(`zenith ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`)
    return r.stdout
  }
  await ok(
    'init',
    '--pageserver-http-port',
    String(http),
    '--pageserver-pg-port',
    String(pg),
    '--compute-port-base',
    String(computeBase),
    ...portArgs,
    ...initArgs,
  )
  const safekeeperHttp = (id: number) => `http://127.0.0.1:${httpBase + id}`
  return { dir, repo, http, pg, zenith, ok, safekeeperHttp }
}

/** Stops whatever the cluster runs and removes its temp dir. */
export async function teardown(c: Cluster | undefined): Promise<void> {
  if (!c) return
  await c.zenith('stop', '--immediate')
  await rm(c.dir, { recursive: true, force: true })
}

/** A port base such that base+1 .. base+count are free right now: safekeeper N listens on base + N. */
export async function freePortBase(count: number): Promise<number> {
  for (;;) {
    const first = await freePort()
    if (first + count > 65535) continue
    const taken = await Promise.all(
      Array.from({ length: count - 1 }, (_, i) => portInUse('127.0.0.1', first + 1 + i)),
    )
    if (!taken.includes(true)) return first - 1
  }
}
