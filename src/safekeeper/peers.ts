/**
 * Peer exchange: how a safekeeper learns its peers' flush LSNs, from which it computes commit_lsn and
 * how much WAL it may remove (timeline.ts, quorum.ts), and where their walsenders listen, which peer
 * recovery connects to (recovery.ts). Stock Postgres tells a standby nothing about what
 * the others have, so the safekeepers ask each other.
 *
 * Behind one small interface, `PeerChannel`: one question, "what does this peer hold of this timeline".
 * Today it is answered over the peers' HTTP APIs from the static `peers` list of safekeeper.toml, each
 * peer polled about every 100 ms; a broker (etcd) could answer the same question from what every
 * safekeeper publishes there, without changing the timelines.
 *
 * Each peer has its own loop, so a peer that hangs until its requests time out delays no one else's
 * news. A peer that does not answer, or lacks the timeline, is forgotten at once (`peerStatus(…, null)`);
 * one log line says when it stopped answering and one when it is back, none per poll.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, type HostPort } from '../lib/host-port.js'
import type { LogFn } from '../lib/log.js'
import { parseLsn } from '../postgres/lsn.js'
import { HttpRequestError, httpRequest } from '../protocol/http-request.js'
import type { SkTimelineInfo } from './api-types.js'
import type { PageserverFeedback } from './control-file.js'
import type { TermPosition } from './quorum.js'
import type { SkTimeline } from './timeline.js'

const POLL_INTERVAL_MS = 100
/** Well above a loopback round trip, short enough that a hung peer is dropped within a second. */
const REQUEST_TIMEOUT_MS = 500

export class PeerError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'PeerError'
}

export interface PeerTimelineStatus extends TermPosition {
  flushLsn: number
  /** What the pageserver last told that peer, if it reads from it: relayed so every safekeeper knows. */
  pageserverFeedback: PageserverFeedback | null
  /** The peer's id and walsender address (`host:port`), for recovery; null from a peer that does not say. */
  id: number | null
  pgAddr: string | null
}

export interface PeerChannel {
  /** The peers, by the address they are shown under. */
  readonly peers: readonly string[]
  /** What `peer` holds of the timeline, null if it lacks it; throws a PeerError if it cannot be asked. */
  timelineStatus(
    peer: string,
    tenantId: string,
    timelineId: string,
    signal: AbortSignal,
  ): Promise<PeerTimelineStatus | null>
}

/** The static peer list of safekeeper.toml, asked over each peer's HTTP API. */
export function httpPeerChannel(peers: readonly HostPort[]): PeerChannel {
  return {
    peers: peers.map(formatHostPort),
    async timelineStatus(peer, tenantId, timelineId, signal) {
      try {
        const res = await httpRequest(`http://${peer}/v1/tenant/${tenantId}/timeline/${timelineId}`, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
        })
        if (res.status === 404) return null
        if (!res.ok) throw new PeerError(`answered HTTP ${res.status}`)
        const info = JSON.parse(res.text) as Partial<SkTimelineInfo>
        const a = info.acceptor_state
        if (
          typeof a?.term !== 'number' ||
          !Array.isArray(a.term_history) ||
          typeof info.flush_lsn !== 'string'
        ) {
          throw new PeerError('sent a timeline detail without acceptor_state or flush_lsn')
        }
        const fb = info.pageserver_feedback
        return {
          term: a.term,
          // The term whose history it follows, as our own position has it (timeline.ts termPosition).
          lastLogTerm: a.term_history.at(-1)?.term ?? 0,
          flushLsn: parseLsn(info.flush_lsn),
          pageserverFeedback: fb
            ? {
                lastReceivedLsn: parseLsn(fb.last_received_lsn),
                diskConsistentLsn: parseLsn(fb.disk_consistent_lsn),
                remoteConsistentLsn: parseLsn(fb.remote_consistent_lsn),
                currentLogicalSize: fb.current_logical_size,
                replyTimeUs: fb.reply_time_us,
              }
            : null,
          id: typeof info.safekeeper_id === 'number' ? info.safekeeper_id : null,
          pgAddr: typeof info.safekeeper_connstr === 'string' ? info.safekeeper_connstr : null,
        }
      } catch (err) {
        const why = err instanceof HttpRequestError ? err.code : (err as Error).message
        throw new PeerError(`peer ${peer}: ${why}`, { cause: err })
      }
    },
  }
}

export class PeerExchange {
  private readonly stopping = new AbortController()
  private loops: Promise<void>[] = []

  constructor(
    private readonly channel: PeerChannel,
    private readonly timelines: () => SkTimeline[],
    private readonly log: LogFn,
  ) {}

  start(): void {
    this.loops = this.channel.peers.map((peer) => this.run(peer))
  }

  /** Resolves once no request is in flight and no timer is left. */
  async stop(): Promise<void> {
    this.stopping.abort()
    await Promise.all(this.loops)
    this.loops = []
  }

  private async run(peer: string): Promise<void> {
    const signal = this.stopping.signal
    let failure: string | null = null
    while (!signal.aborted) {
      let error: string | null | undefined
      try {
        error = await this.poll(peer)
      } catch (err) {
        // Not the peer's fault: a timeline could not take the news (its WAL store failed, or a bug).
        this.log('error', 'peer exchange failed', { peer, error: (err as Error).stack })
      }
      if (signal.aborted) return
      // No timelines, no news: whether the peer answers is unknown, and nothing is logged.
      if (error !== undefined && (error === null) !== (failure === null)) {
        if (error === null) this.log('info', 'peer answers again', { peer })
        else this.log('warn', 'peer does not answer', { peer, error })
        failure = error
      }
      try {
        await sleep(POLL_INTERVAL_MS, undefined, { signal })
      } catch {
        return
      }
    }
  }

  /** Asks `peer` about every timeline: the first error, null if all were answered, undefined if none asked. */
  private async poll(peer: string): Promise<string | null | undefined> {
    const timelines = this.timelines()
    if (timelines.length === 0) return undefined
    const errors = await Promise.all(
      timelines.map(async (tl) => {
        let status: PeerTimelineStatus | null = null
        let error: string | null = null
        try {
          status = await this.channel.timelineStatus(peer, tl.tenantId, tl.timelineId, this.stopping.signal)
        } catch (err) {
          if (!(err instanceof PeerError)) throw err
          error = err.message
        }
        if (this.stopping.signal.aborted) return null
        tl.peerStatus(peer, status && { ...status, seenAt: Date.now() })
        return error
      }),
    )
    return errors.find((e) => e !== null) ?? null
  }
}
