/**
 * One tenant/timeline on a safekeeper: its control file (term, term history, the LSNs it vouches for),
 * its WAL store, the acceptor pulling WAL from the current term's compute, and the walsenders reading it
 * out again. Directory: `<workdir>/<tenant_id>/<timeline_id>/`.
 *
 * commit_lsn: with no peers this safekeeper is the whole quorum and its flush LSN is committed; with
 * peers it is the majority-th highest flush LSN among those of the current term (the timeline hears
 * theirs through `peerFlushed`). It only grows. Walsenders serve the pageserver up to commit_lsn, so WAL
 * that a new term may still truncate never reaches a layer.
 *
 * The control file is rewritten when the term or the compute changes, and otherwise at most once a
 * second as commit_lsn and the last record boundary move: losing that second is safe, because a
 * restarted safekeeper scans its WAL for the end anyway, starting at the persisted record boundary.
 */
import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogFn, LogLevel } from '../lib/log.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import {
  readControlFile,
  type SafekeeperState,
  SK_CONTROL_FILE_NAME,
  writeControlFile,
} from './control-file.js'
import { WalAcceptor } from './wal-acceptor.js'
import { WalStore } from './wal-store.js'

const PERSIST_INTERVAL_MS = 1000

export class SkTimelineError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'SkTimelineError'
}

export interface SkTimelineEnv {
  log: LogFn
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

/** A walsender reading this timeline: the pageserver or a peer. */
export interface WalsenderInfo {
  applicationName: string
  startLsn: Lsn
  sentLsn: Lsn
}

export class SkTimeline {
  readonly metrics = { walBytesIn: 0, walBytesOut: 0 }
  readonly walsenders = new Set<WalsenderInfo>()
  /** Emits 'advance' when flush or commit LSN moves, for walsenders waiting for WAL. */
  readonly events = new EventEmitter()
  /** The end of the last complete record known durable: where a restart's end-of-WAL scan may start. */
  private durableRecordEnd: Lsn
  private acceptor: WalAcceptor | null = null
  private persistTimer: NodeJS.Timeout | null = null
  private readonly peerFlush = new Map<string, Lsn>()

  private constructor(
    readonly dir: string,
    public state: SafekeeperState,
    readonly store: WalStore,
    private readonly env: SkTimelineEnv,
  ) {
    this.durableRecordEnd = store.endRecordLsn
    this.events.setMaxListeners(0)
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
    if (state.computeConnstr) tl.startAcceptor(state.computeConnstr, state.term)
    return tl
  }

  get tenantId(): string {
    return this.state.tenantId
  }

  get timelineId(): string {
    return this.state.timelineId
  }

  get flushLsn(): Lsn {
    return this.store.flushLsn
  }

  get commitLsn(): Lsn {
    return this.state.commitLsn
  }

  get acceptorStatus() {
    return this.acceptor?.status ?? null
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
   * Makes `connstr` the compute of `term`: a term below the one this safekeeper has accepted is refused
   * (that compute has been fenced off); the term is on disk before WAL is pulled from the new compute.
   */
  async setCompute(connstr: string, term: number): Promise<void> {
    if (!Number.isSafeInteger(term) || term < 1) {
      throw new SkTimelineError(`term ${term} is not a positive integer`, { kind: 'user_input' })
    }
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
    const history = this.state.termHistory
    const last = history[history.length - 1]
    const termHistory = last?.term === term ? history : [...history, { term, lsn: this.store.flushLsn }]
    this.persist({ term, termHistory, computeConnstr: connstr })
    this.log('info', 'compute set', { compute: connstr, term, flush: formatLsn(this.store.flushLsn) })
    this.startAcceptor(connstr, term)
  }

  /** The acceptor made WAL durable, at least up to the end of the complete record `recordEnd`. */
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
  }

  /** A peer of the current term reports its flush LSN (for commit_lsn). */
  peerFlushed(peer: string, lsn: Lsn): void {
    this.peerFlush.set(peer, lsn)
    if (this.advanceCommit()) {
      this.events.emit('advance')
      this.schedulePersist()
    }
  }

  private advanceCommit(): boolean {
    const flushes = [this.store.flushLsn, ...this.peerFlush.values()].sort((a, b) => b - a)
    const majority = Math.floor(this.env.members / 2) + 1
    const candidate = flushes[majority - 1]
    if (candidate === undefined || candidate <= this.state.commitLsn) return false
    this.state = { ...this.state, commitLsn: Math.min(candidate, this.store.flushLsn) }
    return true
  }

  private schedulePersist(): void {
    if (this.persistTimer) return
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null
      this.persist({})
    }, PERSIST_INTERVAL_MS)
  }

  private persist(changes: Partial<SafekeeperState>): void {
    this.state = { ...this.state, ...changes, flushRecordLsn: this.durableRecordEnd }
    writeControlFile(path.join(this.dir, SK_CONTROL_FILE_NAME), this.state)
  }

  private startAcceptor(connstr: string, term: number): void {
    this.acceptor = new WalAcceptor(this, connstr, term, this.env.applicationName)
  }

  /** Stops pulling WAL and writes the control file with where things stand. */
  async close(): Promise<void> {
    await this.acceptor?.stop()
    this.acceptor = null
    if (this.persistTimer) clearTimeout(this.persistTimer)
    this.persistTimer = null
    this.persist({})
    this.store.close()
  }
}
