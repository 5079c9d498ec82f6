/**
 * Compute start through the CLI's own code on a local cluster (direct mode, each server a process of its
 * own): the pageserver's fullbackup over the page service into a datadir as `pg start` writes it, and
 * `pg start` of a new endpoint (startEndpointSteps), on the empty database and on a pgbench one.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {
  createEndpoint,
  fetchFullbackup,
  startEndpointSteps,
  stopEndpoint,
} from '../src/control/endpoints.js'
import { loadClusterConfig } from '../src/control/repo-config.js'
import { runSteps } from '../src/control/steps.js'
import { parseMetrics } from '../src/lib/metrics.js'
import { pgbenchInit } from './pgbench.js'
import { withZenithCluster, type ZenithCluster } from './zenith-cluster.js'

const RUNS = 3

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export interface ComputeStartFigures {
  /** Content bytes / seconds of the fullbackup into a datadir; median of RUNS, empty and pgbench database. */
  wireMbS: { empty: number; pgbench: number }
  /** Seconds of startEndpointSteps' steps for a new endpoint; median of RUNS. */
  pgStartS: { empty: number; pgbench: number }
  /** The pageserver's CPU seconds per fullbackup of the pgbench database (process_cpu_seconds_total). */
  pageserverCpuS: number
  /** Content bytes of the pgbench database's fullbackup. */
  pgbenchBytes: number
}

async function pageserverCpuSeconds(c: ZenithCluster): Promise<number> {
  const sample = parseMetrics(await c.pageserver.metrics()).find(
    (m) => m.name === 'process_cpu_seconds_total',
  )
  if (!sample) throw new Error('the pageserver has no process_cpu_seconds_total in /metrics')
  return sample.value
}

export function computeStartBench(): Promise<ComputeStartFigures> {
  return withZenithCluster('compute-start', 0, async (c) => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-compute-start-'))
    try {
      const measure = async (what: string) => {
        // A branch takes one writer: main's compute makes way for the endpoints started here.
        await stopEndpoint(c.repoDir, 'main')
        const speeds: number[] = []
        let bytes = 0
        const lsn = (await c.pageserver.timeline(c.endpoint.tenantId, c.endpoint.timelineId)).last_record_lsn
        // Into the same datadir each time, as a restart with safekeepers does: the first run creates it.
        const datadir = path.join(work, `datadir-${what}`)
        const cpuBefore = await pageserverCpuSeconds(c)
        for (let run = 0; run < RUNS; run++) {
          const t = performance.now()
          ;({ bytes } = await fetchFullbackup(c.repoDir, c.endpoint, lsn, datadir))
          const secs = (performance.now() - t) / 1000
          speeds.push(bytes / 1e6 / secs)
          log(`${what}: fullbackup ${run + 1}: ${(bytes / 1e6).toFixed(0)} MB in ${secs.toFixed(2)} s`)
        }
        const cpuS = ((await pageserverCpuSeconds(c)) - cpuBefore) / RUNS
        const starts: number[] = []
        const names: string[] = []
        for (let run = 0; run < RUNS; run++) {
          const name = `bench-${what}-${run}`
          names.push(name)
          await createEndpoint(c.repoDir, { branch: 'main', name })
          try {
            const t = performance.now()
            const { steps } = await startEndpointSteps(c.repoDir, name)
            const took: string[] = []
            for (const step of steps) {
              const s = performance.now()
              await step.run(() => {})
              took.push(`${step.title.split(' ').slice(0, 2).join(' ')} ${Math.round(performance.now() - s)}`)
            }
            starts.push((performance.now() - t) / 1000)
            log(`${what}: pg start ${run + 1}: ${starts[run].toFixed(2)} s; ms: ${took.join(', ')}`)
          } finally {
            await stopEndpoint(c.repoDir, name)
          }
        }
        // Destroyed only now: on ext4 without a journal, inodes deleted in the last minute make creating
        // files next to them slow, and the next start would pay for this cleanup.
        for (const name of names) await stopEndpoint(c.repoDir, name, { destroy: true })
        await runSteps((await startEndpointSteps(c.repoDir, 'main')).steps)
        return { wire: median(speeds), start: median(starts), bytes, cpuS }
      }
      const empty = await measure('empty')
      log('pgbench -i on main ...')
      await pgbenchInit(c.connstr)
      const pgbench = await measure('pgbench')
      if (loadClusterConfig(c.repoDir).endpoints.main === undefined) throw new Error('endpoint main is gone')
      return {
        pageserverCpuS: pgbench.cpuS,
        wireMbS: { empty: empty.wire, pgbench: pgbench.wire },
        pgStartS: { empty: empty.start, pgbench: pgbench.start },
        pgbenchBytes: pgbench.bytes,
      }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
}
