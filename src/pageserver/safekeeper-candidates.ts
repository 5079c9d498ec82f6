/**
 * The connection manager's view of a timeline's safekeepers: what each one's HTTP API last said
 * (commit_lsn, term), whether it answers, and whether it is cooling down after a failed connection.
 * Which one to stream from, and when to leave the current one, is decided here and nowhere else:
 *
 *   - candidates: safekeepers that answered recently, hold WAL (commit_lsn > 0) and are not cooling
 *     down; the best is the one with the highest commit_lsn;
 *   - cooldown after a failure: 0.1 s × 1.5 per consecutive failure, up to 15 s, forgotten once WAL
 *     arrives from it (Neon replaced "fewest attempts", which could shut a safekeeper out for good);
 *   - switch away from the current one when it sent nothing for walreceiver_connect_timeout (no
 *     keepalives), no new WAL for lagging_wal_timeout while another has more, or another is ahead by
 *     max_lsn_wal_lag or more.
 */

import type { Lsn } from '../postgres/lsn.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { httpRequest } from '../protocol/http-request.js'

const POLL_MS = 250
const POLL_TIMEOUT_MS = 1000
/** An answer older than this no longer counts: the safekeeper is taken for down. */
const ALIVE_MS = 2000
const COOLDOWN_START_MS = 100
const COOLDOWN_FACTOR = 1.5
const COOLDOWN_MAX_MS = 15_000

export interface SafekeeperAddr {
  id: number
  /** host:port of its walsender (libpq). */
  pg: string
  /** host:port of its HTTP API. */
  http: string
}

export interface CandidateState {
  id: number
  commitLsn: Lsn | null
  term: number | null
  lastSeenMs: number | null
  failures: number
  cooldownUntilMs: number
}

export type SwitchReason = 'NoKeepAlives' | 'NoWalTimeout' | 'LaggingWal'

export interface StreamProgress {
  /** The safekeeper streamed from. */
  id: number
  /** End of the WAL received from it. */
  received: Lsn
  /** When anything (WAL or keepalive) last arrived, and when WAL last did. */
  lastMessageMs: number
  lastWalMs: number
}

export interface SwitchRules {
  connectTimeoutMs: number
  laggingWalTimeoutMs: number
  maxLsnWalLag: number
}

export class SafekeeperCandidates {
  private readonly states = new Map<number, CandidateState>()
  private timer: NodeJS.Timeout | null = null
  private readonly abort = new AbortController()

  constructor(
    readonly safekeepers: readonly SafekeeperAddr[],
    private readonly tenantId: string,
    private readonly timelineId: string,
    private readonly now: () => number = Date.now,
  ) {
    for (const sk of safekeepers)
      this.states.set(sk.id, {
        id: sk.id,
        commitLsn: null,
        term: null,
        lastSeenMs: null,
        failures: 0,
        cooldownUntilMs: 0,
      })
  }

  /** Starts polling the safekeepers' HTTP APIs. */
  start(): void {
    const tick = async () => {
      await Promise.all(this.safekeepers.map((sk) => this.poll(sk)))
      if (!this.abort.signal.aborted) this.timer = setTimeout(tick, POLL_MS)
    }
    void tick()
  }

  stop(): void {
    this.abort.abort()
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  get all(): CandidateState[] {
    return [...this.states.values()]
  }

  /** What a safekeeper said about the timeline, as its HTTP API does (for tests and polling). */
  heard(id: number, info: { commitLsn: Lsn; term: number }): void {
    const s = this.states.get(id)
    if (s) Object.assign(s, { commitLsn: info.commitLsn, term: info.term, lastSeenMs: this.now() })
  }

  /** It stopped answering (or does not hold the timeline). */
  lost(id: number): void {
    const s = this.states.get(id)
    if (s) s.lastSeenMs = null
  }

  /** A connection to it failed or was given up: it cools down, longer each time in a row. */
  failed(id: number): void {
    const s = this.states.get(id)
    if (!s) return
    s.cooldownUntilMs =
      this.now() + Math.min(COOLDOWN_MAX_MS, COOLDOWN_START_MS * COOLDOWN_FACTOR ** s.failures)
    s.failures++
  }

  /** WAL arrived from it: its failures are forgotten. */
  gotWal(id: number): void {
    const s = this.states.get(id)
    if (s) Object.assign(s, { failures: 0, cooldownUntilMs: 0 })
  }

  private usable(s: CandidateState): boolean {
    const now = this.now()
    return (
      s.lastSeenMs !== null &&
      now - s.lastSeenMs <= ALIVE_MS &&
      s.commitLsn !== null &&
      s.commitLsn > 0 &&
      now >= s.cooldownUntilMs
    )
  }

  /** The safekeeper to stream from: the usable one with the highest commit_lsn; null when none is. */
  best(except?: number): SafekeeperAddr | null {
    let pick: CandidateState | null = null
    for (const s of this.states.values()) {
      if (s.id === except || !this.usable(s)) continue
      if (!pick || (s.commitLsn ?? 0) > (pick.commitLsn ?? 0)) pick = s
    }
    return pick ? this.safekeepers.find((sk) => sk.id === pick.id)! : null
  }

  /** Why the current stream should move to another safekeeper, or null to stay. */
  switchReason(p: StreamProgress, rules: SwitchRules): SwitchReason | null {
    const now = this.now()
    if (now - p.lastMessageMs > rules.connectTimeoutMs) return 'NoKeepAlives'
    const other = this.best(p.id)
    const otherCommit = other ? (this.states.get(other.id)!.commitLsn ?? 0) : 0
    if (other && otherCommit - p.received >= rules.maxLsnWalLag) return 'LaggingWal'
    if (other && otherCommit > p.received && now - p.lastWalMs > rules.laggingWalTimeoutMs)
      return 'NoWalTimeout'
    return null
  }

  private async poll(sk: SafekeeperAddr): Promise<void> {
    try {
      const res = await httpRequest(
        `http://${sk.http}/v1/tenant/${this.tenantId}/timeline/${this.timelineId}`,
        { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(POLL_TIMEOUT_MS)]) },
      )
      if (!res.ok) {
        this.lost(sk.id)
        return
      }
      const info = JSON.parse(res.text) as { commit_lsn: string; acceptor_state: { term: number } }
      this.heard(sk.id, { commitLsn: parseLsn(info.commit_lsn), term: info.acceptor_state.term })
    } catch {
      this.lost(sk.id)
    }
  }

  /** The candidates as timeline detail shows them. */
  describe(): {
    id: number
    commit_lsn: string | null
    term: number | null
    alive: boolean
    cooldown_ms: number
  }[] {
    const now = this.now()
    return this.all.map((s) => ({
      id: s.id,
      commit_lsn: s.commitLsn === null ? null : formatLsn(s.commitLsn),
      term: s.term,
      alive: s.lastSeenMs !== null && now - s.lastSeenMs <= ALIVE_MS,
      cooldown_ms: Math.max(0, s.cooldownUntilMs - now),
    }))
  }
}
