/**
 * How far the consumers of one timeline's WAL are behind its producer while a load runs: the pageserver's
 * last_record_lsn and every safekeeper's flush_lsn, sampled at a fixed period against the end of WAL the
 * producer reports (a compute's flush LSN, or what the synthetic walsender has sent). The producer's end
 * is asked after the consumers on each sample: it only grows, so a lag is never understated.
 *
 * A consumer that does not answer in time leaves a gap in its own series instead of stopping the load:
 * a slow answer under load is part of what is being measured.
 */

import { percentile } from '../lib/percentile.js'
import type { Lsn } from '../postgres/lsn.js'
import { parseLsn } from '../postgres/lsn.js'
import type { PageserverClient } from './pageserver-client.js'
import type { SafekeeperClient } from './safekeeper-client.js'

/** An answer later than this is a missed sample: the sampler must keep its period. */
const ANSWER_TIMEOUT_MS = 1_000

export interface LagConsumers {
  tenantId: string
  timelineId: string
  pageserver: PageserverClient
  safekeepers: readonly SafekeeperClient[]
}

export interface LagPercentiles {
  p50: number
  p99: number
  max: number
  samples: number
}

export interface LagSummary {
  pageserver: LagPercentiles
  /** Per sample the safekeeper furthest behind: the one a quorum can least rely on. Null without any. */
  safekeepers: LagPercentiles | null
}

/** The latest sample, for live progress. */
export interface LagNow {
  pageserver: number | null
  safekeepers: number | null
}

export class IngestLagSampler {
  private readonly ps: number[] = []
  private readonly sk: number[] = []
  private running = false
  private loop: Promise<void> | null = null
  latest: LagNow = { pageserver: null, safekeepers: null }

  constructor(
    private readonly consumers: LagConsumers,
    private readonly producerEnd: () => Promise<Lsn>,
    private readonly periodMs = 100,
  ) {}

  start(): void {
    this.running = true
    this.loop = this.run()
  }

  async stop(): Promise<LagSummary> {
    this.running = false
    await this.loop
    return {
      pageserver: summarize(this.ps),
      safekeepers: this.consumers.safekeepers.length > 0 ? summarize(this.sk) : null,
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const next = Date.now() + this.periodMs
      await this.sample()
      const wait = next - Date.now()
      if (wait > 0 && this.running) await new Promise((r) => setTimeout(r, wait))
    }
  }

  /** One sample: every consumer at once, then the producer's end. */
  private async sample(): Promise<void> {
    const { tenantId, timelineId, pageserver, safekeepers } = this.consumers
    const [psAt, ...skAt] = await Promise.all([
      pageserver
        .timeline(tenantId, timelineId, ANSWER_TIMEOUT_MS)
        .then((t) => parseLsn(t.last_record_lsn))
        .catch(() => null),
      ...safekeepers.map((sk) =>
        sk
          .timeline(tenantId, timelineId)
          .then((t) => parseLsn(t.flush_lsn))
          .catch(() => null),
      ),
    ])
    const end = await this.producerEnd()
    const lagOf = (at: Lsn | null) => (at === null ? null : Math.max(0, end - at))
    const psLag = lagOf(psAt)
    const skLags = skAt.map(lagOf)
    if (psLag !== null) this.ps.push(psLag)
    const known = skLags.filter((l): l is number => l !== null)
    const skWorst = known.length > 0 ? Math.max(...known) : null
    if (skWorst !== null) this.sk.push(skWorst)
    this.latest = { pageserver: psLag, safekeepers: skWorst }
  }
}

function summarize(xs: readonly number[]): LagPercentiles {
  return {
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    max: xs.reduce((a, b) => Math.max(a, b), 0),
    samples: xs.length,
  }
}
