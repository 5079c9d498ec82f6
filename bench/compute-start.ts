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
import { pgbenchInit } from './pgbench.js'
import { withZenithCluster } from './zenith-cluster.js'

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
  /** Content bytes of the pgbench database's fullbackup. */
  pgbenchBytes: number
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
        const datadir = path.join(work, 'datadir')
        for (let run = 0; run < RUNS; run++) {
          const t = performance.now()
          ;({ bytes } = await fetchFullbackup(c.repoDir, c.endpoint, lsn, datadir))
          const secs = (performance.now() - t) / 1000
          speeds.push(bytes / 1e6 / secs)
          log(`${what}: fullbackup ${run + 1}: ${(bytes / 1e6).toFixed(0)} MB in ${secs.toFixed(2)} s`)
        }
        await rm(datadir, { recursive: true, force: true })
        const starts: number[] = []
        for (let run = 0; run < RUNS; run++) {
          const name = `bench-${what}-${run}`
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
            await stopEndpoint(c.repoDir, name, { destroy: true })
          }
        }
        await runSteps((await startEndpointSteps(c.repoDir, 'main')).steps)
        return { wire: median(speeds), start: median(starts), bytes }
      }
      const empty = await measure('empty')
      log('pgbench -i on main ...')
      await pgbenchInit(c.connstr)
      const pgbench = await measure('pgbench')
      if (loadClusterConfig(c.repoDir).endpoints.main === undefined) throw new Error('endpoint main is gone')
      return {
        wireMbS: { empty: empty.wire, pgbench: pgbench.wire },
        pgStartS: { empty: empty.start, pgbench: pgbench.start },
        pgbenchBytes: pgbench.bytes,
      }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
}
