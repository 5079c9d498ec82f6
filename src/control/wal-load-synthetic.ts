/**
 * `zenith wal load --synthetic`: WAL made up by zenith, with no Postgres in the way, served to the
 * pageserver as a walsender would serve it, so that ingest can be measured and pushed to its limit.
 *
 * The load gets a branch of its own (of the tenant's main branch, at its tip, named `synthetic-<n>` unless
 * named), and its WAL goes on exactly where that branch ends (wal_continuation: LSN, prev-link, system id,
 * segment size, next xid and OID). A walsender on 127.0.0.1 (a port the OS picks) serves it; the
 * pageserver is pointed at it. WAL is made in whole records, paced to the rate (or as fast as the
 * pageserver takes it, with no rate), and held until the pageserver reports it received — at most
 * MAX_HELD_BYTES, beyond which making more waits, so a pageserver that cannot keep up shows as a rate
 * below target rather than as memory. At the end the pageserver is given a bounded time to ingest it all,
 * then detached from the source; the branch stays, with what it ingested, like any other.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { MiB } from '../lib/units.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { type RecordMix, SyntheticWal } from '../postgres/synthetic-wal.js'
import { listen } from '../protocol/listen.js'
import { WalQueue } from '../protocol/wal-queue.js'
import { createQueueWalsender } from '../protocol/walsender.js'
import { safekeeperAddrs } from './endpoints.js'
import { IngestLagSampler } from './ingest-lag.js'
import { safekeeperClientOf } from './layout.js'
import { type PageserverClient, settleWalReceiver } from './pageserver-client.js'
import { waitFor } from './process.js'
import { loadClusterConfig, tenantOf, timelineOfBranch } from './repo-config.js'
import { withRepoLock } from './repo-lock.js'
import type { Step } from './steps.js'
import { adoptCompute, majorityOf, syncSafekeepers } from './sync-safekeepers.js'
import { tenantPageserver } from './tenant-placement.js'
import { createBranch } from './tenants.js'
import {
  lagFields,
  mibPerSecond,
  progressLine,
  round,
  type WalLoadProgress,
  type WalLoadReport,
} from './wal-load-report.js'

export interface SyntheticLoadOptions {
  repoDir: string
  tenantId?: string
  /** The new branch's name; default `synthetic-<n>`, the first n free. */
  branch?: string
  /** Bytes of WAL per second; Infinity: as fast as the pageserver takes it. */
  rateBytesPerSec: number
  durationMs: number
  recordMix: RecordMix
  /**
   * Who pulls the WAL from the walsender: the pageserver itself (default), or the cluster's safekeepers,
   * as from a compute of a new term, with the pageserver reading it from them.
   */
  to?: 'pageserver' | 'safekeepers'
  /** How long the pageserver may take to ingest the rest once the load ends. */
  drainTimeoutMs?: number
  /**
   * WAL made and not yet received by the pageserver, at most (default MAX_HELD_BYTES): with no rate, how
   * far ahead of the pageserver making may run. Small records cost the pageserver far more per byte than
   * images, so a benchmark of them holds less.
   */
  holdBytes?: number
}

export class SyntheticLoadError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'SyntheticLoadError'
}

/** WAL made and not yet reported received by the pageserver, at most. */
export const MAX_HELD_BYTES = 64 * MiB
/** How often WAL is made: each time as much as the rate has come to since the start. */
const TICK_MS = 5
/** With no rate, WAL is made in chunks of this size. */
const UNPACED_CHUNK = 256 * 1024
const KEEPALIVE_MS = 1000
const CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_DRAIN_TIMEOUT_MS = 60_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function syntheticWalLoad(
  opts: SyntheticLoadOptions,
  onProgress: (p: WalLoadProgress) => void = () => {},
): Promise<WalLoadReport> {
  const { repoDir } = opts
  const tenantId = tenantOf(loadClusterConfig(repoDir), opts.tenantId)
  const { client: ps, logFile } = tenantPageserver(repoDir, tenantId)
  const sks = opts.to === 'safekeepers' ? safekeepersOf(repoDir) : []
  const branch = await withRepoLock(repoDir, 'wal load --synthetic', async () => {
    const name = opts.branch ?? freeBranchName(repoDir, tenantId)
    await createBranch(repoDir, { branchName: name, tenantId })
    return name
  })
  const timelineId = timelineOfBranch(loadClusterConfig(repoDir), tenantId, branch)
  const cont = await ps.walContinuation(tenantId, timelineId)
  const start = parseLsn(cont.last_record_lsn)
  const gen = new SyntheticWal({
    startLsn: start,
    prevLsn: cont.prev_record_lsn === null ? 0 : parseLsn(cont.prev_record_lsn),
    systemId: BigInt(cont.system_id),
    segmentSize: cont.wal_segment_size,
    timeline: cont.pg_timeline,
    nextXid: cont.next_xid,
    nextOid: cont.next_oid,
    mix: opts.recordMix,
  })
  const queue = new WalQueue(start)
  const failures: string[] = []
  const fail = (msg: string) => failures.push(msg)
  const walsender = createQueueWalsender({
    name: 'the synthetic walsender',
    queue,
    systemId: cont.system_id,
    timeline: cont.pg_timeline,
    walSegmentSize: cont.wal_segment_size,
    keepaliveMs: KEEPALIVE_MS,
    // Every safekeeper must have WAL before it goes: one that reconnects resumes at its own flush LSN.
    receivers: Math.max(1, sks.length),
    onBug: (e) => fail(`walsender: ${e.message}`),
    onConnectionError: (e) => fail(`walsender connection: ${e.message}`),
  })
  const listener = await listen(walsender, { host: '127.0.0.1', port: 0 }, 'the synthetic walsender')
  const connstr = `postgresql://postgres@127.0.0.1:${listener.port}/postgres`
  const sampler = new IngestLagSampler(
    { tenantId, timelineId, pageserver: ps, safekeepers: sks.map((id) => safekeeperClientOf(repoDir, id)) },
    async () => queue.endLsn,
  )
  let sourceSet = false
  try {
    if (sks.length > 0) {
      await pullThroughSafekeepers(repoDir, ps, sks, tenantId, timelineId, {
        connstr,
        systemId: cont.system_id,
        startLsn: cont.last_record_lsn,
      })
    } else {
      await ps.setWalSource(tenantId, timelineId, connstr)
      sourceSet = true
    }
    await waitForStreaming(ps, tenantId, timelineId, logFile)

    sampler.start()
    const paced = Number.isFinite(opts.rateBytesPerSec)
    const t0 = performance.now()
    let second = { at: t0, bytes: 0, commits: 0 }
    for (;;) {
      const now = performance.now()
      const elapsed = now - t0
      if (elapsed >= opts.durationMs) break
      const made = queue.endLsn - start
      const due = paced ? (opts.rateBytesPerSec * elapsed) / 1000 : made + UNPACED_CHUNK
      const room = (opts.holdBytes ?? MAX_HELD_BYTES) - queue.heldBytes
      if (due > made && room > 0) queue.push(gen.generate(Math.min(due - made, room)))
      if (now - second.at >= 1000) {
        const bytes = queue.endLsn - start
        onProgress({
          elapsed_s: elapsed / 1000,
          duration_s: opts.durationMs / 1000,
          wal_mib_s: mibPerSecond(bytes - second.bytes, now - second.at),
          tps: ((gen.commits - second.commits) * 1000) / (now - second.at),
          commit_latency_ms_p50: null,
          commit_latency_ms_p99: null,
          lag: sampler.latest,
          errors: failures.length,
        })
        second = { at: now, bytes, commits: gen.commits }
      }
      // Unpaced, making WAL is the whole job: yield only so the walsender can send it.
      await (paced || room <= 0 ? sleep(TICK_MS) : new Promise((r) => setImmediate(r)))
    }
    const ms = performance.now() - t0
    const lag = await sampler.stop()
    const end = queue.endLsn
    const drained = await waitFor(
      async () => parseLsn((await ps.timeline(tenantId, timelineId)).last_record_lsn) >= end,
      opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    )
    if (!drained) {
      const at = (await ps.timeline(tenantId, timelineId)).last_record_lsn
      fail(`the pageserver ingested up to ${at} of the WAL up to ${formatLsn(end)} in time`)
    }
    const walBytes = end - start
    return {
      mode: 'synthetic',
      tenant_id: tenantId,
      timeline_id: timelineId,
      branch,
      target_wal_mib_s: paced ? round(opts.rateBytesPerSec / MiB) : null,
      target_tps: null,
      duration_s: round(ms / 1000),
      wal_bytes: walBytes,
      achieved_wal_mib_s: round(mibPerSecond(walBytes, ms)),
      transactions: gen.commits,
      tps: round((gen.commits * 1000) / ms, 1),
      commit_latency_ms_p50: null,
      commit_latency_ms_p99: null,
      ...lagFields(lag),
      errors: failures.length,
      first_error: failures[0] ?? null,
    }
  } finally {
    await sampler.stop()
    // Detached first, so the receiver does not retry against a walsender that is gone. (Safekeepers keep
    // trying theirs until the next compute of the branch takes its place: they have no way to be told.)
    if (sourceSet) await ps.setWalSource(tenantId, timelineId, null).catch(() => {})
    await listener.close()
  }
}

/** The load as one step whose live title is the progress line, and the report once it ran. */
export function syntheticLoadSteps(opts: SyntheticLoadOptions): {
  steps: Step[]
  report: () => WalLoadReport
} {
  let report: WalLoadReport | null = null
  const rate = Number.isFinite(opts.rateBytesPerSec)
    ? `${round(opts.rateBytesPerSec / MiB)} MiB/s`
    : 'full speed'
  return {
    steps: [
      {
        title: `synthetic WAL (${opts.recordMix}) at ${rate} for ${opts.durationMs / 1000} s on a new branch`,
        run: async (progress) => {
          report = await syntheticWalLoad(opts, (p) => progress(`synthetic WAL: ${progressLine(p)}`))
          return `synthetic WAL (${opts.recordMix}) on branch ${report.branch}: ${report.achieved_wal_mib_s} MiB/s`
        },
      },
    ],
    report: () => {
      if (!report) throw new Error('syntheticLoadSteps: report() before the load step ran')
      return report
    },
  }
}

/** The cluster's safekeepers; refused when it has none. */
function safekeepersOf(repoDir: string): number[] {
  const ids = loadClusterConfig(repoDir).safekeepers
  if (ids.length === 0) {
    throw new SyntheticLoadError('the cluster has no safekeepers to send synthetic WAL to', {
      kind: 'user_input',
      hint: 'send it to the pageserver instead, or `zenith init --num-safekeepers 3`',
    })
  }
  return ids
}

/**
 * The walsender as the compute of the first term of the branch on the safekeepers (an election, the
 * timeline created on them at its start), the pageserver reading from them: what `pg start` does.
 */
async function pullThroughSafekeepers(
  repoDir: string,
  ps: PageserverClient,
  ids: readonly number[],
  tenantId: string,
  timelineId: string,
  compute: { connstr: string; systemId: string; startLsn: string },
): Promise<void> {
  const clients = ids.map((id) => safekeeperClientOf(repoDir, id))
  const el = await syncSafekeepers(clients, tenantId, timelineId)
  const { accepted, failures } = await adoptCompute(clients, tenantId, timelineId, el, compute)
  if (accepted < majorityOf(clients.length)) {
    throw new SyntheticLoadError(
      `only ${accepted} of ${clients.length} safekeepers took the synthetic walsender: ${failures.join('; ')}`,
    )
  }
  await ps.setSafekeepers(tenantId, timelineId, safekeeperAddrs(repoDir, ids))
}

/** `synthetic-<n>`, the first n no branch of the tenant has. */
function freeBranchName(repoDir: string, tenantId: string): string {
  const taken = loadClusterConfig(repoDir).branches[tenantId] ?? {}
  let n = 1
  while (`synthetic-${n}` in taken) n++
  return `synthetic-${n}`
}

async function waitForStreaming(
  ps: PageserverClient,
  tenantId: string,
  timelineId: string,
  logFile: string,
): Promise<void> {
  const { status, error } = await settleWalReceiver(ps, tenantId, timelineId, CONNECT_TIMEOUT_MS)
  if (status !== 'streaming') {
    throw new SyntheticLoadError(
      `the pageserver did not stream from the synthetic walsender (${status || 'no answer'}${error ? `: ${error}` : ''})`,
      { logFile },
    )
  }
}
