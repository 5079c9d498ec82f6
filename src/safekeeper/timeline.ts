/**
 * One tenant/timeline on a safekeeper: its control file (term, term history, the LSNs it vouches for),
 * its WAL store, the acceptor pulling WAL from the current term's compute, peer recovery fetching what a
 * peer of the term has and the compute cannot give (recovery.ts), and the walsenders reading it out
 * again. Directory: `<workdir>/<tenant_id>/<timeline_id>/`. The acceptor and recovery take turns at the
 * store through `writer` (wal-intake.ts).
 *
 * commit_lsn: with no peers this safekeeper is the whole quorum and its flush LSN is committed; with
 * peers it is the majority-th highest flush LSN among those of the current term (the timeline hears
 * theirs through `peerStatus`, see peers.ts). It only grows. Walsenders serve the pageserver up to
 * commit_lsn, so WAL that a new term may still truncate never reaches a layer.
 *
 * The control file is rewritten when the term or the compute changes, and otherwise at most once a
 * second as commit_lsn and the last record boundary move: losing that second is safe, because a
 * restarted safekeeper scans its WAL for the end anyway, starting at the persisted record boundary, and
 * hears commit_lsn from its peers again. One exception: the first time commit_lsn reaches the start of a
 * new term it is written at once, because that is what the election waits for before the compute's
 * basebackup is taken at that LSN; a commit_lsn reported there and then lost would make the wait a lie.
 *
 * WAL removal: once the pageserver reports what it has made durable, segments entirely below the
 * horizon of quorum.ts are deleted, after local_start_lsn has been moved past them on disk, so that a
 * crash in between leaves extra files rather than a promise of WAL that is gone.
 */

import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogFn, LogLevel } from '../lib/log.js'
import { LsnClock } from '../lib/lsn-clock.js'
import { formatLsn, type Lsn, segmentNumber, segmentStart } from '../postgres/lsn.js'
import {
  epochAt,
  lastLogTerm,
  readControlFile,
  type SafekeeperState,
  SK_CONTROL_FILE_NAME,
  type TermEntry,
  writeControlFile,
} from './control-file.js'
import type { PeerTimelineStatus } from './peers.js'
import {
  divergencePoint,
  quorumCommitLsn,
  recoveryDonor,
  sameTerm,
  type TermPosition,
  walRemovalHorizon,
} from './quorum.js'
import { type Donor, PeerRecovery } from './recovery.js'
import type { SafekeeperMetrics } from './safekeeper-metrics.js'
import { WalAcceptor } from './wal-acceptor.js'
import { WriterLock } from './wal-intake.js'
import { WalStore } from './wal-store.js'

const PERSIST_INTERVAL_MS = 1000

export class SkTimelineError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'SkTimelineError'
}

export interface SkTimelineEnv {
  /**
   * How far the pageserver may fall behind commit_lsn in what it received (write) and made durable
   * (flush) before acks to the compute wait; 0: no limit (Neon's max_replication_write/flush_lag).
   */
  maxWriteLag: number
  maxFlushLag: number
  log: LogFn
  metrics: SafekeeperMetrics
  /** The application_name this safekeeper's acceptors connect with (sk<N>). */
  applicationName: string
  /** How many safekeepers share the timeline's quorum, this one included. */
  members: number
}

export interface NewTimeline {
  tenantId: string
  timelineId: string
  systemId: string
  pgTimeline: number
  walSegSize: number
  /** A record boundary: the first LSN of the timeline's WAL (a basebackup's LSN). */
  startLsn: Lsn
}

/** What a peer last said about this timeline. */
export interface PeerReport extends PeerTimelineStatus {
  /** Date.now() when it said so. */
  seenAt: number
}

/** A walsender reading this timeline: the pageserver or a peer. */
export interface WalsenderInfo {
  applicationName: string
  startLsn: Lsn
  sentLsn: Lsn
}

function checkHistoryOf(term: number, history: readonly TermEntry[]): void {
  if (history.at(-1)?.term !== term) {
    throw new SkTimelineError(`the term history of term ${term} must end with term ${term}`, {
      kind: 'user_input',
    })
  }
}

export class SkTimeline {
  readonly walsenders = new Set<WalsenderInfo>()
  /**
   * Emits 'advance' when flush or commit LSN moves, for walsenders waiting for WAL, and 'term' when the
   * term changes, for walsenders serving a peer's recovery in the old one.
   */
  readonly events = new EventEmitter()
  readonly writer = new WriterLock()
  /**
   * Where the compute's end of WAL (its flush LSN) was over time, as the acceptor heard it: how many
   * seconds the flush and commit LSNs are behind. Kept across terms; a new compute's end below the old
   * one's starts it afresh.
   */
  readonly computeEnd = new LsnClock()
  private readonly recovery: PeerRecovery
  /** The end of the last complete record known durable: where a restart's end-of-WAL scan may start. */
  private durableRecordEnd: Lsn
  private acceptor: WalAcceptor | null = null
  private persistTimer: NodeJS.Timeout | null = null
  private readonly peers = new Map<string, PeerReport>()

  private constructor(
    readonly dir: string,
    public state: SafekeeperState,
    readonly store: WalStore,
    private readonly env: SkTimelineEnv,
  ) {
    this.durableRecordEnd = store.endRecordLsn
    this.events.setMaxListeners(0)
    this.recovery = new PeerRecovery(this, env.applicationName)
  }

  static async create(workdir: string, t: NewTimeline, env: SkTimelineEnv): Promise<SkTimeline> {
    const dir = path.join(workdir, t.tenantId, t.timelineId)
    mkdirSync(dir, { recursive: true })
    const state: SafekeeperState = {
      tenantId: t.tenantId,
      timelineId: t.timelineId,
      systemId: t.systemId,
      pgTimeline: t.pgTimeline,
      walSegSize: t.walSegSize,
      term: 0,
      termHistory: [],
      timelineStartLsn: t.startLsn,
      localStartLsn: t.startLsn,
      commitLsn: t.startLsn,
      truncateLsn: t.startLsn,
      flushRecordLsn: t.startLsn,
      remoteConsistentLsn: t.startLsn,
      pageserverFeedback: null,
      computeConnstr: null,
    }
    writeControlFile(path.join(dir, SK_CONTROL_FILE_NAME), state)
    return SkTimeline.open(dir, env)
  }

  /** Opens a timeline directory and starts pulling from its compute, if it has one. */
  static async open(dir: string, env: SkTimelineEnv): Promise<SkTimeline> {
    const state = readControlFile(path.join(dir, SK_CONTROL_FILE_NAME))
    const store = await WalStore.open(dir, {
      walSegSize: state.walSegSize,
      pgTimeline: state.pgTimeline,
      systemId: BigInt(state.systemId),
      scanFrom: state.flushRecordLsn,
    })
    const tl = new SkTimeline(dir, state, store, env)
    // The scan may find WAL beyond the commit_lsn persisted last (it is written at most once a second):
    // with no peers to hear from, nothing but new WAL would move commit_lsn there.
    if (tl.advanceCommit()) tl.schedulePersist()
    if (state.computeConnstr) tl.startAcceptor(state.computeConnstr, state.term)
    return tl
  }

  get tenantId(): string {
    return this.state.tenantId
  }

  get timelineId(): string {
    return this.state.timelineId
  }

  get metrics(): SafekeeperMetrics {
    return this.env.metrics
  }

  get flushLsn(): Lsn {
    return this.store.flushLsn
  }

  get commitLsn(): Lsn {
    return this.state.commitLsn
  }

  /** The term of the WAL this safekeeper holds at its end: what an election compares (control-file.ts). */
  get epoch(): number {
    return epochAt(this.state.termHistory, this.store.flushLsn)
  }

  get termPosition(): TermPosition {
    return { term: this.state.term, lastLogTerm: lastLogTerm(this.state) }
  }

  /** The peers that answered last time they were asked, by address. */
  get peerReports(): ReadonlyMap<string, PeerReport> {
    return this.peers
  }

  get acceptorStatus() {
    return this.acceptor?.status ?? null
  }

  get recoveryStatus() {
    return this.recovery.status
  }

  /**
   * The peer to fetch missing WAL from now, or null: none while the compute streams to us, since it
   * brings the WAL itself and recovery would only hold up its writes.
   */
  recoveryDonor(): Donor | null {
    if (this.acceptor?.status.state === 'streaming') return null
    const candidates: Donor[] = []
    for (const [peer, p] of this.peers)
      if (p.pgAddr !== null) candidates.push({ ...p, peer, pgAddr: p.pgAddr })
    return recoveryDonor(this.termPosition, this.store.writeLsn, candidates)
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    this.env.log(level, msg, { tenantId: this.tenantId, timelineId: this.timelineId, ...fields })
  }

  /** The compute's IDENTIFY_SYSTEM must name the database system and Postgres timeline of this one. */
  checkSystem(systemId: string, pgTimeline: number, connstr: string): void {
    if (systemId !== this.state.systemId || pgTimeline !== this.state.pgTimeline) {
      throw new SkTimelineError(
        `${connstr} is database system ${systemId} timeline ${pgTimeline}; this timeline holds WAL of system ${this.state.systemId} timeline ${this.state.pgTimeline}`,
        { kind: 'user_input' },
      )
    }
  }

  /**
   * A vote for `term`, in the election a compute start runs: given only for a term above every term this
   * safekeeper has accepted. WAL stops coming from the old term's compute, a partial record at the end is
   * cut (no commit can end inside it), and the term is on disk before the answer — so the new compute can
   * start at the end of the WAL of the most advanced voter, and the old one can no longer count this
   * safekeeper for its commits.
   */
  async vote(term: number): Promise<{ voteGiven: boolean; term: number; epoch: number; flushLsn: Lsn }> {
    if (!Number.isSafeInteger(term) || term <= this.state.term) {
      return {
        voteGiven: false,
        term: this.state.term,
        epoch: this.epoch,
        flushLsn: this.flushLsn,
      }
    }
    await this.acceptor?.stop()
    this.acceptor = null
    await this.recovery.cancel()
    // Until the new term is on disk recovery could start again in the old one, mid-cut.
    const release = await this.writer.acquire('vote', new AbortController().signal)
    try {
      await this.store.flush()
      if (this.store.flushLsn > this.store.endRecordLsn) await this.cutWal(this.store.endRecordLsn)
      // An acceptor cut off mid-batch leaves WAL written but not synced, which the flush above made
      // durable: it counts for commit_lsn like any other, or with no peers commit_lsn would stay below
      // the start LSN this vote gives the election, and the pageserver would never get there.
      this.flushed(this.store.endRecordLsn)
      // A lone safekeeper counts its flush LSN committed, mid-record too; the bytes just cut belonged to
      // a record never completed, which no acknowledged commit can need.
      const commitLsn = Math.min(this.state.commitLsn, this.store.flushLsn)
      this.persist({ term, computeConnstr: null, commitLsn })
    } finally {
      release()
    }
    this.log('info', 'voted', { term, flush: formatLsn(this.flushLsn) })
    return { voteGiven: true, term, epoch: this.epoch, flushLsn: this.flushLsn }
  }

  /**
   * The election's outcome, for a voter of `term` before the term has its compute: `history` is the
   * term's history (the donor's terms up to the start LSN L, then `term` at L). A tail that parts from it
   * is cut (Neon's truncation at the divergence point); what is left is a prefix of the WAL the term
   * continues, and peer recovery fetches the rest up to L from the donor — the peer of the same position
   * with the most — so that a majority reaches L, where commit_lsn then stands.
   */
  async adoptTerm(term: number, history: readonly TermEntry[]): Promise<void> {
    checkHistoryOf(term, history)
    if (term !== this.state.term || this.state.computeConnstr !== null) {
      throw new SkTimelineError(
        `the outcome of the election of term ${term} came to a safekeeper in term ${this.state.term}${this.state.computeConnstr ? ' with a compute' : ''}: it belongs to the voters of that term, before its compute`,
      )
    }
    await this.recovery.cancel()
    await this.cutDivergentTail(term, history)
    this.persist({ termHistory: [...history] })
    this.log('info', 'election outcome adopted', {
      term,
      start: formatLsn(history.at(-1)!.lsn),
      flush: formatLsn(this.store.flushLsn),
    })
  }

  /**
   * Drops the WAL at and after the record boundary `lsn`. The record end kept for a restart's end-of-WAL
   * scan moves back with it: a scan starting above the new end would take the zeroed bytes in between,
   * or bytes written there later mid-record, for the end of the WAL.
   */
  private async cutWal(lsn: Lsn): Promise<void> {
    await this.store.truncate(lsn)
    this.durableRecordEnd = Math.min(this.durableRecordEnd, lsn)
  }

  /**
   * Makes `connstr` the compute of `term`: a term below the one this safekeeper has accepted is refused
   * (that compute has been fenced off); the term is on disk before WAL is pulled from the new compute.
   *
   * `history` is the term's own history as the election made it (the donor's terms up to the start LSN,
   * then `term` there). WAL of other terms beyond where it parts from ours (`divergencePoint`) is an
   * unacknowledged tail no majority kept — a safekeeper that was away during an election may hold one —
   * and is cut before the history is adopted, so that this safekeeper only ever holds WAL of the term's
   * history. Without it (an older caller) the term is taken to start at our own flush LSN.
   */
  async setCompute(connstr: string, term: number, history?: readonly TermEntry[]): Promise<void> {
    if (!Number.isSafeInteger(term) || term < 1) {
      throw new SkTimelineError(`term ${term} is not a positive integer`, { kind: 'user_input' })
    }
    if (history !== undefined) checkHistoryOf(term, history)
    if (term < this.state.term) {
      throw new SkTimelineError(
        `term ${term} is older than term ${this.state.term}, which this safekeeper has accepted: that compute is fenced off`,
      )
    }
    if (term === this.state.term && connstr !== this.state.computeConnstr && this.state.computeConnstr) {
      throw new SkTimelineError(
        `term ${term} already belongs to ${this.state.computeConnstr}; a new compute needs a new term`,
      )
    }
    await this.acceptor?.stop()
    this.acceptor = null
    // The new term's history starts at our flush LSN, which must not move under it.
    await this.recovery.cancel()
    let termHistory: TermEntry[]
    if (history === undefined) {
      const own = this.state.termHistory
      termHistory = own.at(-1)?.term === term ? own : [...own, { term, lsn: this.store.flushLsn }]
    } else {
      await this.cutDivergentTail(term, history)
      termHistory = [...history]
    }
    this.persist({ term, termHistory, computeConnstr: connstr })
    this.log('info', 'compute set', { compute: connstr, term, flush: formatLsn(this.store.flushLsn) })
    this.startAcceptor(connstr, term)
  }

  private async cutDivergentTail(term: number, history: readonly TermEntry[]): Promise<void> {
    const at = divergencePoint(this.state.termHistory, this.store.flushLsn, history)
    if (at >= this.store.flushLsn) return
    if (at < this.state.commitLsn) {
      throw new SkTimelineError(
        `the history of term ${term} parts from this safekeeper's WAL at ${formatLsn(at)}, below its commit_lsn ${formatLsn(this.state.commitLsn)}: committed WAL would be lost`,
      )
    }
    const dropped = this.store.flushLsn - at
    // Recovery may have started again since it was cancelled: it must not append while the cut runs.
    const release = await this.writer.acquire('new term', new AbortController().signal)
    try {
      await this.cutWal(at)
    } finally {
      release()
    }
    this.log('info', 'WAL truncated at the divergence point', { lsn: formatLsn(at), term, bytes: dropped })
  }

  /** The acceptor or recovery made WAL durable, at least up to the end of the complete record `recordEnd`. */
  flushed(recordEnd: Lsn): void {
    this.durableRecordEnd = Math.max(this.durableRecordEnd, recordEnd)
    this.advanceCommit()
    this.events.emit('advance')
    this.schedulePersist()
  }

  /** Resolves when flush or commit LSN moves, or after `ms`. */
  waitForAdvance(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t)
        this.events.off('advance', done)
        resolve()
      }
      const t = setTimeout(done, ms)
      this.events.on('advance', done)
    })
  }

  /** A reader's standby status update: the pageserver says how far it has received and made durable. */
  feedback(s: { write: Lsn; flush: Lsn; apply: Lsn; clockUs: bigint }): void {
    this.state = {
      ...this.state,
      pageserverFeedback: {
        lastReceivedLsn: s.write,
        diskConsistentLsn: s.flush,
        remoteConsistentLsn: s.apply,
        currentLogicalSize: this.state.pageserverFeedback?.currentLogicalSize ?? 0,
        replyTimeUs: Number(s.clockUs),
      },
    }
    this.schedulePersist()
    this.removeOldWal()
    this.events.emit('feedback')
  }

  /**
   * Backpressure: whether the pageserver is further behind commit_lsn than the settings allow. Without
   * any feedback yet nothing is known of its lag, and nothing is held back.
   */
  pageserverTooFarBehind(): boolean {
    const fb = this.state.pageserverFeedback
    if (!fb) return false
    const commit = this.state.commitLsn
    const { maxWriteLag, maxFlushLag } = this.env
    return (
      (maxWriteLag > 0 && commit - fb.lastReceivedLsn > maxWriteLag) ||
      (maxFlushLag > 0 && commit - fb.diskConsistentLsn > maxFlushLag)
    )
  }

  /** Resolves once the pageserver is no longer too far behind, or `gone()` says to stop waiting. */
  async pageserverCaughtUp(gone: () => boolean): Promise<void> {
    while (this.pageserverTooFarBehind() && !gone()) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t)
          this.events.off('feedback', done)
          resolve()
        }
        // Also re-checked now and then: a gone pageserver sends no feedback that would wake us.
        const t = setTimeout(done, 500)
        this.events.on('feedback', done)
      })
    }
  }

  /**
   * What a peer says about this timeline, or null when it did not answer or does not have it: then it
   * is forgotten, so that an old answer neither props up commit_lsn nor lets WAL it may need be removed.
   */
  peerStatus(peer: string, report: PeerReport | null): void {
    if (report === null) {
      this.peers.delete(peer)
      return
    }
    this.peers.set(peer, report)
    // The pageserver reads from one safekeeper; the others learn its progress from that one, so that
    // backpressure and WAL removal hold on every safekeeper of the quorum, not only the one it reads.
    const relayed = report.pageserverFeedback
    const own = this.state.pageserverFeedback
    if (relayed && (!own || relayed.replyTimeUs > own.replyTimeUs)) {
      this.state = { ...this.state, pageserverFeedback: relayed }
      this.events.emit('feedback')
    }
    if (this.advanceCommit()) {
      this.events.emit('advance')
      this.schedulePersist()
    }
    this.removeOldWal()
  }

  /** Flush LSNs of the peers whose positions compare with ours. */
  private sameTermPeerFlushes(): Lsn[] {
    const ours = this.termPosition
    return [...this.peers.values()].filter((p) => sameTerm(p, ours)).map((p) => p.flushLsn)
  }

  private advanceCommit(): boolean {
    const termStartLsn = this.state.termHistory.at(-1)?.lsn ?? this.state.timelineStartLsn
    const next = quorumCommitLsn({
      ownFlush: this.store.flushLsn,
      peerFlushes: this.sameTermPeerFlushes(),
      members: this.env.members,
      termStartLsn,
    })
    const prev = this.state.commitLsn
    if (next === null || next <= prev) return false
    if (prev < termStartLsn) this.persist({ commitLsn: next })
    else this.state = { ...this.state, commitLsn: next }
    return true
  }

  private removeOldWal(): void {
    const horizon = walRemovalHorizon({
      pageserverDurable: this.state.pageserverFeedback?.remoteConsistentLsn ?? null,
      peerFlushes: this.sameTermPeerFlushes(),
      peers: this.env.members - 1,
      commitLsn: this.state.commitLsn,
      flushLsn: this.store.flushLsn,
    })
    if (horizon === null) return
    const segSize = this.state.walSegSize
    const keepFrom = segmentStart(segmentNumber(horizon, segSize), segSize)
    // Most calls end here: the horizon has not crossed into a segment after the first one held.
    if (keepFrom <= this.store.localStartLsn) return
    this.persist({ localStartLsn: Math.max(this.state.localStartLsn, keepFrom) })
    const removed = this.store.removeSegmentsBelow(horizon)
    if (removed.length > 0) {
      this.log('info', 'WAL segments removed', {
        horizon: formatLsn(horizon),
        first: removed[0],
        last: removed.at(-1),
        count: removed.length,
      })
    }
  }

  private schedulePersist(): void {
    if (this.persistTimer) return
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null
      this.persist({})
    }, PERSIST_INTERVAL_MS)
  }

  private persist(changes: Partial<SafekeeperState>): void {
    const termChanged = changes.term !== undefined && changes.term !== this.state.term
    this.state = { ...this.state, ...changes, flushRecordLsn: this.durableRecordEnd }
    writeControlFile(path.join(this.dir, SK_CONTROL_FILE_NAME), this.state)
    if (termChanged) this.events.emit('term')
  }

  private startAcceptor(connstr: string, term: number): void {
    this.acceptor = new WalAcceptor(this, connstr, term, this.env.applicationName)
  }

  /** Stops pulling WAL and writes the control file with where things stand. */
  async close(): Promise<void> {
    await this.acceptor?.stop()
    this.acceptor = null
    await this.recovery.stop()
    if (this.persistTimer) clearTimeout(this.persistTimer)
    this.persistTimer = null
    this.persist({})
    this.store.close()
  }
}
