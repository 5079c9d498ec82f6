/**
 * `zenith tenant migrate`: moves a tenant from the pageserver that holds it to another, live, with
 * Neon's choreography (RFC 028), so that at every moment one pageserver can serve it and the WAL it
 * needs is still on the safekeepers (after a check that both pageservers answer):
 *
 *   1. the old pageserver uploads what it has and turns AttachedStale: it still serves reads and takes
 *      WAL, but does nothing in remote storage (nothing deleted, remote_consistent_lsn frozen);
 *   2. the storage controller issues generation g+1 to the new pageserver, which attaches AttachedMulti
 *      (no deletions) from the remote indexes the old one just uploaded; the old one's generation is
 *      stale from here on, which validation tells it;
 *   3. the new pageserver streams each timeline's WAL from where its index ends, from the same source
 *      as the old one (the safekeepers, or the compute), until it has what the old one had;
 *   4. computes are served by the new pageserver from now on: placement follows the controller, so the
 *      next basebackup comes from it; a running compute keeps running (it takes basebackups at start
 *      only, and its WAL goes to the safekeepers, or to the new pageserver that now streams it);
 *   5. the new pageserver turns AttachedSingle;
 *   6. the old one detaches: its WAL receivers stop and its copy of the tenant goes.
 *
 * A failure in 2 or 3 gives the tenant back to the old pageserver, at a new generation.
 */

import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { listEndpoints, safekeeperAddrs } from './endpoints.js'
import { pageserverClientOf } from './layout.js'
import { pageserverName } from './pageserver-process.js'
import { waitFor } from './process.js'
import { branchOfTimeline, loadClusterConfig, pageserverOf, tenantOf } from './repo-config.js'
import type { Step } from './steps.js'
import { storageControllerClientOf } from './storage-controller-process.js'
import { tenantPageserverId } from './tenant-placement.js'

/** How long the old pageserver may take to upload what it has before it turns stale. */
const FLUSH_MS = 60_000
/** How long the new pageserver may take to stream what the old one had. */
const CATCH_UP_MS = 120_000

export class MigrateError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'MigrateError'
}

export interface MigrateReport {
  tenant_id: string
  from: number
  to: number
  /** The new attachment's generation. */
  generation: number
  /** Each timeline with the LSN the new pageserver had streamed when it took over. */
  timelines: { timeline_id: string; branch: string | null; lsn: string }[]
  /** The tenant's running computes: they keep running, served by the new pageserver from now on. */
  running_endpoints: string[]
  elapsed_ms: number
}

export function migrateSteps(
  repoDir: string,
  opts: { tenantId?: string; to: number },
): { steps: Step[]; report: () => MigrateReport } {
  const c = loadClusterConfig(repoDir)
  const tenantId = tenantOf(c, opts.tenantId)
  const to = pageserverOf(c, opts.to)
  const from = tenantPageserverId(repoDir, tenantId)
  if (from === to) throw new MigrateError(`tenant ${tenantId} is already on pageserver ${to}`)
  const [fromName, toName] = [pageserverName(from), pageserverName(to)]
  const oldPs = pageserverClientOf(repoDir, from)
  const newPs = pageserverClientOf(repoDir, to)
  const controller = storageControllerClientOf(repoDir)
  const started = performance.now()
  let generation = 0
  const timelines: MigrateReport['timelines'] = []
  let running: string[] = []

  /**
   * A move that fails after the old pageserver turned stale gives the tenant back to it with a newer
   * generation still (the one the new pageserver may have used is over), and drops what the new one has.
   */
  const rollingBack = (run: () => Promise<unknown>) => async (): Promise<unknown> => {
    try {
      return await run()
    } catch (err) {
      const back = (await controller.attach(tenantId, from, 'AttachedSingle')).generation
      await oldPs.locationConfig(tenantId, { mode: 'AttachedSingle', generation: back })
      await newPs.locationConfig(tenantId, { mode: 'Detached' }).catch(() => undefined)
      const why = err instanceof Error ? err.message : String(err)
      throw new MigrateError(`${why}; the tenant stays on ${fromName} (generation ${back})`, {
        kind: err instanceof ZenithError ? err.kind : 'external',
        hint: err instanceof ZenithError ? err.hint : undefined,
        cause: err,
      })
    }
  }

  const steps: Step[] = [
    {
      title: `${toName} and ${fromName} answer`,
      run: async () => {
        for (const [name, ps] of [
          [toName, newPs],
          [fromName, oldPs],
        ] as const) {
          if (!(await ps.isUp()))
            throw new MigrateError(`${name} does not answer: the tenant cannot move`, {
              kind: 'unavailable',
              hint: `start it with \`zenith pageserver start ${name === toName ? to : from}\``,
            })
        }
      },
    },
    {
      title: `${fromName}: upload what it has, then AttachedStale`,
      run: async () => {
        const current = (await controller.tenants()).find((t) => t.tenant_id === tenantId)
        if (!current) throw new MigrateError(`the storage controller does not know tenant ${tenantId}`)
        await oldPs.locationConfig(
          tenantId,
          { mode: 'AttachedStale', generation: current.generation },
          FLUSH_MS,
        )
        return `${fromName}: uploaded, AttachedStale at generation ${current.generation}`
      },
    },
    {
      title: `${toName}: attach with a new generation, AttachedMulti`,
      run: rollingBack(async () => {
        const conf = (await oldPs.tenantConfig(tenantId)).tenant_specific_overrides
        generation = (await controller.attach(tenantId, to, 'AttachedMulti')).generation
        await newPs.locationConfig(tenantId, { mode: 'AttachedMulti', generation, tenant_conf: conf })
        return `${toName}: attached at generation ${generation}, AttachedMulti`
      }),
    },
    {
      title: `${toName}: catch up with ${fromName} from the WAL`,
      run: rollingBack(async () => {
        const had = await oldPs.timelines(tenantId)
        for (const tl of had) {
          const sks = tl.walreceiver_candidates?.map((k) => k.id)
          if (sks && sks.length > 0)
            await newPs.setSafekeepers(tenantId, tl.timeline_id, safekeeperAddrs(repoDir, sks))
          else if (tl.wal_source_connstr !== null)
            await newPs.setWalSource(tenantId, tl.timeline_id, tl.wal_source_connstr)
        }
        for (const tl of had) {
          const target = parseLsn(tl.last_record_lsn)
          let at = 0
          const ok = await waitFor(async () => {
            at = parseLsn((await newPs.timeline(tenantId, tl.timeline_id)).last_record_lsn)
            return at >= target
          }, CATCH_UP_MS)
          const branch = branchOfTimeline(c, tenantId, tl.timeline_id)
          if (!ok) {
            throw new MigrateError(
              `${toName} has ${branch ?? tl.timeline_id} up to ${formatLsn(at)}, ${fromName} had ${tl.last_record_lsn}, and it did not get there within ${CATCH_UP_MS / 1000} s`,
              { kind: 'timeout' },
            )
          }
          timelines.push({ timeline_id: tl.timeline_id, branch, lsn: formatLsn(at) })
        }
        return `${toName}: caught up on ${had.length} timeline${had.length === 1 ? '' : 's'}`
      }),
    },
    {
      title: `computes: served by ${toName} from now on`,
      run: async () => {
        running = (await listEndpoints(repoDir))
          .filter((e) => e.tenant_id === tenantId && e.status === 'running')
          .map((e) => e.name)
        return running.length === 0
          ? `computes: none running; the next one starts from ${toName}`
          : `computes: ${running.join(', ')} ${running.length === 1 ? 'keeps' : 'keep'} running, served by ${toName}`
      },
    },
    {
      title: `${toName}: AttachedSingle`,
      run: async () => {
        await controller.setMode(tenantId, to, 'AttachedSingle')
        await newPs.locationConfig(tenantId, { mode: 'AttachedSingle', generation })
      },
    },
    {
      title: `${fromName}: detach`,
      run: async () => {
        await oldPs.locationConfig(tenantId, { mode: 'Detached' })
        return `${fromName}: detached, its copy removed`
      },
    },
  ]
  const report = (): MigrateReport => ({
    tenant_id: tenantId,
    from,
    to,
    generation,
    timelines,
    running_endpoints: running,
    elapsed_ms: Math.round(performance.now() - started),
  })
  return { steps, report }
}
