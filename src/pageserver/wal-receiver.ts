/**
 * WAL receivers: per timeline with a WAL source, a physical replication connection to a walsender
 * (IDENTIFY_SYSTEM, START_REPLICATION PHYSICAL at the next record after last_record_lsn). The source is
 * either the compute itself (no safekeepers: the pageserver is the compute's synchronous standby) or
 * the timeline's safekeepers, of which the connection manager (safekeeper-candidates.ts) picks the one
 * with the highest commit_lsn and moves to another when it falls silent or behind; safekeepers send
 * only committed WAL.
 * XLogData is decoded and ingested as it arrives, and standby status updates report write = last byte
 * received, flush = disk_consistent_lsn, apply = remote_consistent_lsn — the compute names the
 * pageserver in synchronous_standby_names, so its commits wait for `write`. A shutting-down compute
 * waits for `flush` to cover all it sent, so when its walsender asks for a reply with nothing left to
 * send, the timeline is checkpointed first (not for a safekeeper, which holds the WAL durably itself).
 * A lost connection is retried with backoff (the compute restarts, or is not up yet). A compute that
 * lacks the WAL the timeline needs next (it refuses the start position, or what it sends there is not
 * WAL) is not retried: the receiver is `broken`, with the error, until its source is set again —
 * retrying would spin for ever while commits on the compute hang. So is a record that ingest refuses,
 * from either source: the same WAL comes again on every retry. Both are logged once, at error level.
 *
 * Lag in seconds: every XLogData carries the source's end of WAL (walEnd: a compute's flush LSN, a
 * safekeeper's commit_lsn), and the receiver notes it in the timeline's LsnClock as it hears it, so the
 * lag of each of the timeline's LSNs is how long ago the source was there — one clock per timeline, kept
 * across reconnects and changes of source (an end that goes back, after a failover, starts it afresh).
 *
 * The sources are kept in `wal_sources.json` in the pageserver's working directory, so a restarted
 * pageserver reconnects by itself: a connection string, or `{"safekeepers": [{id, pg, http}, …]}`.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { LayerNotLocalError } from '../engine/errors.js'
import type { Timeline } from '../engine/timeline.js'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, parseHostPort } from '../lib/host-port.js'
import { LsnClock } from '../lib/lsn-clock.js'
import { controlFileOf } from '../pgdata/datadir-keyspace.js'
import { IngestError, WalIngest } from '../pgdata/walingest.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { WalDecodeError, WalDecoder } from '../postgres/wal-decoder.js'
import type { PgClient } from '../protocol/client.js'
import { PgServerError } from '../protocol/errors.js'
import { encodeStandbyStatusUpdate, parsePrimaryKeepalive, parseXLogData } from '../protocol/replication.js'
import {
  connectReplication,
  parseConnstr,
  Reconnector,
  type ReplicationTarget,
  type SessionState,
} from '../protocol/replication-client.js'
import type { Pageserver } from './pageserver.js'
import { type SafekeeperAddr, SafekeeperCandidates, type SwitchReason } from './safekeeper-candidates.js'

export const WAL_SOURCES_FILE = 'wal_sources.json'
/** The name the compute's synchronous_standby_names must list. */
export const WAL_RECEIVER_APPLICATION_NAME = 'pageserver'

const BACKOFF_MAX_MS = 5000
/** A status update at least this often, well inside the walsender's wal_sender_timeout. */
const STATUS_INTERVAL_MS = 1000

/** Where a timeline's WAL comes from. */
export type WalSource = { connstr: string } | { safekeepers: SafekeeperAddr[] }

export interface WalReceiverStatus {
  /** The walsender streamed from (or last tried): the compute, or the current safekeeper's. */
  connstr: string
  status: SessionState
  /** With safekeepers: the current one, each candidate, and why the receiver last moved. */
  safekeeperId?: number
  candidates?: ReturnType<SafekeeperCandidates['describe']>
  lastSwitch?: { reason: SwitchReason; from: number; atMs: number }
  lastReceivedLsn?: Lsn
  /** Microseconds since the Unix epoch, as Neon reports it. */
  lastReceivedTsUs?: number
  /** Where the source's end of WAL was over time, as heard: the timeline's lag in seconds. */
  sourceEnd: LsnClock
  lastError?: string
}

export class WalSourceError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalSourceError'
}

/** A source as wal_sources.json and the HTTP API hold it, checked. */
export function checkWalSource(source: WalSource): WalSource {
  if ('connstr' in source) {
    parseConnstr(source.connstr, 'WAL source')
    return { connstr: source.connstr }
  }
  if (!Array.isArray(source.safekeepers) || source.safekeepers.length === 0)
    throw new WalSourceError('safekeepers must be a non-empty list of {id, pg, http}')
  const ids = new Set<number>()
  for (const sk of source.safekeepers) {
    if (!Number.isSafeInteger(sk?.id) || sk.id < 1 || ids.has(sk.id))
      throw new WalSourceError(`safekeeper id ${JSON.stringify(sk?.id)} is not a distinct positive integer`)
    ids.add(sk.id)
    parseHostPort(sk.pg, `safekeeper ${sk.id} pg`)
    parseHostPort(sk.http, `safekeeper ${sk.id} http`)
  }
  return { safekeepers: source.safekeepers.map(({ id, pg, http }) => ({ id, pg, http })) }
}

/** The source cannot serve the WAL at the timeline's next record: another attempt would fail the same way. */
export class MissingWalError extends WalSourceError {
  static override kind: ErrorKind = 'conflict'
  override name = 'MissingWalError'
}

/** What Postgres' walsender answers START_REPLICATION with when it does not have the WAL asked for. */
const WALSENDER_LACKS_WAL = [
  /requested starting point \S+ is ahead of the WAL flush position/,
  /requested WAL segment \S+ has already been removed/,
]

const sameSource = (a: WalSource, b: WalSource) => JSON.stringify(a) === JSON.stringify(b)

/** How often a stream from a safekeeper is checked against the switch rules. */
const SWITCH_CHECK_MS = 250

class WalReceiver {
  /** What the stream has received; the loop knows whether it is streaming and why not. */
  readonly state: Omit<WalReceiverStatus, 'status' | 'lastError' | 'candidates'>
  private client: PgClient | null = null
  private readonly loop: Reconnector
  private readonly candidates: SafekeeperCandidates | null

  constructor(
    private readonly ps: Pageserver,
    private readonly tl: Timeline,
    readonly source: WalSource,
    sourceEnd: LsnClock,
  ) {
    const compute = 'connstr' in source ? parseConnstr(source.connstr, 'WAL source') : null
    this.candidates =
      'safekeepers' in source
        ? new SafekeeperCandidates(source.safekeepers, tl.tenantId, tl.timelineId)
        : null
    this.candidates?.start()
    this.state = { connstr: 'connstr' in source ? source.connstr : '', sourceEnd }
    this.loop = new Reconnector({
      session: (streaming) => this.session(compute, streaming),
      interrupt: async () => {
        const c = this.client
        this.client = null
        await c?.close()
      },
      endedMessage: compute ? 'the compute ended replication' : 'the safekeeper ended replication',
      // With safekeepers, one that lacks WAL is the connection manager's to move away from.
      isPermanent: (err) =>
        err instanceof IngestError || (compute !== null && err instanceof MissingWalError),
      onError: (error, repeated) => {
        if (!repeated)
          this.ps.log('warn', 'WAL receiver connection failed, retrying', {
            tenantId: tl.tenantId,
            timelineId: tl.timelineId,
            source: this.state.connstr,
            error,
          })
      },
      backoffMaxMs: BACKOFF_MAX_MS,
    })
  }

  /** The receiver's state for timeline detail: the loop's, with what the stream has received. */
  get status(): WalReceiverStatus {
    return {
      ...this.state,
      status: this.loop.state,
      lastError: this.loop.lastError,
      ...(this.candidates ? { candidates: this.candidates.describe() } : {}),
    }
  }

  get broken(): boolean {
    return this.loop.state === 'broken'
  }

  async stop(): Promise<void> {
    this.candidates?.stop()
    await this.loop.stop()
  }

  /** One connection: to the compute, or to the best safekeeper there is now. */
  private async session(compute: ReplicationTarget | null, streaming: () => void): Promise<void> {
    try {
      await this.sessionOn(compute, streaming)
    } catch (err) {
      if (err instanceof LayerNotLocalError) return this.fetchForIngest(err)
      const why =
        err instanceof IngestError
          ? 'ingest refused a record'
          : compute && err instanceof MissingWalError
            ? 'the compute does not have the WAL the timeline needs'
            : null
      if (why) {
        this.ps.log('error', `WAL receiver stopped: ${why}`, {
          tenantId: this.tl.tenantId,
          timelineId: this.tl.timelineId,
          source: this.state.connstr,
          error: (err as Error).message,
        })
      }
      throw err
    }
  }

  /**
   * Ingest reads pages mid-record and cannot resume there: the stream dropped its uncommitted batch,
   * and once the layer is downloaded the receiver reconnects from last_record_lsn, as after any lost
   * connection.
   */
  private async fetchForIngest(err: LayerNotLocalError): Promise<void> {
    const fields = {
      tenantId: this.tl.tenantId,
      timelineId: this.tl.timelineId,
      layer: path.basename(err.layer.path),
      last_record_lsn: formatLsn(this.tl.lastRecordLsn),
    }
    this.ps.log(
      'info',
      'WAL ingest needs a layer from remote storage: batch dropped, reconnecting after its download',
      fields,
    )
    await err.layer.download()
    throw new ZenithError(
      `reconnecting from ${fields.last_record_lsn} after downloading layer ${fields.layer} for WAL ingest`,
      {
        kind: 'unavailable',
      },
    )
  }

  private async sessionOn(compute: ReplicationTarget | null, streaming: () => void): Promise<void> {
    if (compute) return this.stream(compute, undefined, streaming)
    const sk = this.candidates!.best()
    if (!sk) {
      throw new ZenithError('no safekeeper of the timeline is reachable with WAL to send', {
        kind: 'unavailable',
      })
    }
    const addr = parseHostPort(sk.pg, `safekeeper ${sk.id} pg`)
    this.state.connstr = `postgresql://postgres@${formatHostPort(addr)}/`
    this.state.safekeeperId = sk.id
    try {
      await this.stream({ ...addr, user: 'postgres' }, sk, streaming)
    } catch (err) {
      this.candidates!.failed(sk.id)
      throw err
    }
  }

  private async stream(
    target: ReplicationTarget,
    sk: SafekeeperAddr | undefined,
    streaming: () => void,
  ): Promise<void> {
    const tl = this.tl
    const config = this.ps.tenant(tl.tenantId).config
    const { client, system: sys } = await connectReplication(target, {
      applicationName: WAL_RECEIVER_APPLICATION_NAME,
      connectTimeoutMs: config.walreceiver_connect_timeout,
      // A safekeeper holds many timelines: the startup options name ours, as Neon's do.
      ...(sk ? { options: `-c tenant_id=${tl.tenantId} -c timeline_id=${tl.timelineId}` } : {}),
    })
    this.client = client
    if (this.loop.isStopped) return
    const systemId = controlFileOf((key) => tl.get(key, tl.lastRecordLsn))?.systemIdentifier
    if (systemId !== undefined && BigInt(sys.systemId) !== systemId) {
      throw new WalSourceError(
        `${this.state.connstr} belongs to database system ${sys.systemId}, timeline ${tl.timelineId} to ${systemId}`,
      )
    }
    // last_record_lsn is a record's end: the next record starts there, or after the page header there.
    const startLsn = tl.lastRecordLsn
    const lacksWal = (reason: string) =>
      new MissingWalError(
        `${this.state.connstr} does not have the WAL from ${formatLsn(startLsn)} on, where timeline ${tl.timelineId} goes on: ${reason}`,
      )
    const stream = await client
      .copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(startLsn)}`)
      .catch((err: unknown) => {
        throw refusesStart(err) ? lacksWal((err as Error).message) : err
      })
    streaming()
    this.ps.log('info', 'WAL receiver streaming', {
      tenantId: tl.tenantId,
      timelineId: tl.timelineId,
      source: this.state.connstr,
      start: formatLsn(startLsn),
    })
    const decoder = new WalDecoder({ startLsn, systemId, timeline: sys.timeline })
    const ingest = new WalIngest(tl)
    let received = startLsn
    let lastSent = { write: -1, flush: -1, apply: -1, at: 0 }
    const sendStatus = (force: boolean) => {
      const flush = tl.diskConsistentLsn
      const apply = tl.remoteConsistentLsn
      const now = Date.now()
      if (
        !force &&
        received === lastSent.write &&
        flush === lastSent.flush &&
        apply === lastSent.apply &&
        now - lastSent.at < STATUS_INTERVAL_MS
      )
        return
      stream.send(encodeStandbyStatusUpdate({ write: received, flush, apply }))
      lastSent = { write: received, flush, apply, at: now }
    }
    // One reply for all the XLogData a socket read brought: commits wait for it, but a reply per message
    // costs a syscall each and would make the pageserver the compute's bottleneck.
    let replyScheduled = false
    // A read that needs a remote-only layer stopped ingest mid-record: what it holds must not commit.
    let dropped = false
    const scheduleReply = () => {
      if (replyScheduled) return
      replyScheduled = true
      setImmediate(() => {
        replyScheduled = false
        if (client.closed || dropped) return
        try {
          ingest.commit()
          sendStatus(true)
        } catch (err) {
          this.loop.lastError = (err as Error).message
          void client.close()
        }
      })
    }
    const timer = setInterval(() => {
      if (!client.closed && !replyScheduled) sendStatus(false)
    }, STATUS_INTERVAL_MS)
    const progress = { received, lastMessageMs: Date.now(), lastWalMs: Date.now() }
    // With safekeepers, the connection manager may decide another one serves the timeline better.
    const switchCheck =
      sk &&
      setInterval(() => {
        const reason = this.candidates!.switchReason(
          { id: sk.id, ...progress },
          {
            connectTimeoutMs: config.walreceiver_connect_timeout,
            laggingWalTimeoutMs: config.lagging_wal_timeout,
            maxLsnWalLag: config.max_lsn_wal_lag,
          },
        )
        if (!reason || client.closed) return
        this.state.lastSwitch = { reason, from: sk.id, atMs: Date.now() }
        this.ps.log('info', 'WAL receiver switching safekeeper', {
          tenantId: tl.tenantId,
          timelineId: tl.timelineId,
          from: sk.id,
          reason,
          received: formatLsn(progress.received),
        })
        this.candidates!.failed(sk.id)
        void client.close()
      }, SWITCH_CHECK_MS)
    try {
      for await (const msg of stream) {
        if (this.loop.isStopped) break
        const kind = msg[0]
        if (kind === 0x77 /* 'w' */) {
          const x = parseXLogData(msg)
          this.state.sourceEnd.note(x.walEnd)
          if (x.walStart !== received) {
            throw new WalSourceError(
              `the walsender sent WAL from ${formatLsn(x.walStart)}, expected ${formatLsn(received)}`,
            )
          }
          decoder.feed(x.data)
          received += x.data.length
          let records = 0
          try {
            for (let rec = decoder.next(); rec !== null; rec = decoder.next()) {
              ingest.ingest(rec)
              records++
            }
          } catch (err) {
            // Not a single valid record where ours go on: the compute's WAL starts later (zeros there).
            if (err instanceof WalDecodeError && decoder.lastRecord === undefined) throw lacksWal(err.message)
            throw err
          }
          this.state.lastReceivedLsn = received
          this.state.lastReceivedTsUs = Date.now() * 1000
          progress.received = received
          progress.lastMessageMs = progress.lastWalMs = Date.now()
          if (sk) this.candidates!.gotWal(sk.id)
          this.ps.metrics.walIngestBytes.inc(x.data.length)
          this.ps.metrics.walIngestRecords.inc(records)
          scheduleReply()
        } else if (kind === 0x6b /* 'k' */) {
          const k = parsePrimaryKeepalive(msg)
          // A keepalive's walEnd is what the walsender has sent (Postgres' sentPtr), which may lag the end
          // its last XLogData named: it can only raise the clock, never start it afresh.
          if (k.walEnd > (this.state.sourceEnd.end ?? -1)) this.state.sourceEnd.note(k.walEnd)
          this.state.lastReceivedTsUs = Date.now() * 1000
          progress.lastMessageMs = Date.now()
          ingest.commit()
          // A compute's walsender that has sent everything and asks for a reply is waiting for `flush`
          // to reach its end, as a shutting-down compute does: make what was received durable, then
          // answer. A safekeeper asks on every idle keepalive and holds the WAL itself: flushing for it
          // would cut a small L0 layer at every pause, so the open layer waits for checkpoint_distance
          // or checkpoint_timeout as usual.
          if (!sk && k.replyRequested && k.walEnd <= received && tl.lastRecordLsn === received) {
            if (tl.diskConsistentLsn < tl.lastRecordLsn) await tl.checkpoint()
          }
          sendStatus(k.replyRequested)
        }
      }
    } catch (err) {
      if (err instanceof LayerNotLocalError) dropped = true
      throw refusesStart(err) ? lacksWal((err as Error).message) : err
    } finally {
      clearInterval(timer)
      if (switchCheck) clearInterval(switchCheck)
      if (!dropped) ingest.commit()
    }
  }
}

/** Whether the walsender refused to stream because it does not have the WAL asked for. */
function refusesStart(err: unknown): boolean {
  return err instanceof PgServerError && WALSENDER_LACKS_WAL.some((re) => re.test(err.message))
}

/** The saved sources: none when the file does not exist; a damaged file is an error naming it. */
function readSources(file: string): Record<string, WalSource> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new WalSourceError(`cannot read ${file}: ${(err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new WalSourceError(`${file} is not valid JSON (${(err as Error).message}); fix or remove it`)
  }
  const damaged = () =>
    new WalSourceError(
      `${file} must map "<tenant_id>/<timeline_id>" to a connection string or {"safekeepers": [...]}; fix or remove it`,
    )
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw damaged()
  const out: Record<string, WalSource> = {}
  for (const [id, v] of Object.entries(doc)) {
    // A plain string is a compute's connection string, as older pageservers wrote it.
    const source = typeof v === 'string' ? { connstr: v } : v
    if (typeof source !== 'object' || source === null) throw damaged()
    try {
      out[id] = checkWalSource(source as WalSource)
    } catch (err) {
      throw new WalSourceError(`${file}, ${id}: ${(err as Error).message}`)
    }
  }
  return out
}

export class WalReceivers {
  private readonly receivers = new Map<string, WalReceiver>()
  /** Each timeline's clock of its source's end, outliving the receivers that a change of source replaces. */
  private readonly clocks = new Map<string, LsnClock>()
  private sources: Record<string, WalSource> = {}
  private readonly file: string

  constructor(private readonly ps: Pageserver) {
    this.file = path.join(ps.workdir, WAL_SOURCES_FILE)
  }

  /** Connects every timeline whose source was saved, skipping timelines that no longer exist. */
  startAll(): void {
    this.sources = readSources(this.file)
    for (const [id, source] of Object.entries(this.sources)) {
      const [tenantId, timelineId] = id.split('/')
      try {
        this.start(this.ps.timeline(tenantId, timelineId), source)
      } catch (err) {
        this.ps.log('warn', 'WAL source of a missing timeline ignored', {
          timeline: id,
          error: (err as Error).message,
        })
      }
    }
  }

  /** Sets (or with null, removes) a timeline's WAL source, replacing a running receiver. */
  async set(tenantId: string, timelineId: string, source: WalSource | null): Promise<void> {
    const tl = this.ps.timeline(tenantId, timelineId)
    const id = `${tl.tenantId}/${tl.timelineId}`
    const checked = source === null ? null : checkWalSource(source)
    const running = this.receivers.get(id)
    // Setting the source again is how a broken receiver is told to try once more.
    if (running && checked && sameSource(running.source, checked) && !running.broken) return
    this.receivers.delete(id)
    await running?.stop()
    if (checked === null) {
      delete this.sources[id]
      this.clocks.delete(id)
    } else this.sources[id] = checked
    writeFileDurable(this.file, `${JSON.stringify(this.sources, null, 2)}\n`)
    if (checked !== null) this.start(tl, checked)
  }

  /**
   * Stops the receivers of every timeline of a tenant and forgets their sources, as it leaves this
   * pageserver; returns them (timeline id → source), for a caller that has to put them back.
   */
  async removeTenant(tenantId: string): Promise<Map<string, WalSource>> {
    const prefix = `${tenantId}/`
    const removed = new Map<string, WalSource>()
    for (const [id, source] of Object.entries(this.sources))
      if (id.startsWith(prefix)) removed.set(id.slice(prefix.length), source)
    const running = [...this.receivers.keys()].filter((id) => id.startsWith(prefix))
    await Promise.all(
      running.map((id) => {
        const r = this.receivers.get(id)!
        this.receivers.delete(id)
        return r.stop()
      }),
    )
    for (const timelineId of removed.keys()) {
      delete this.sources[prefix + timelineId]
      this.clocks.delete(prefix + timelineId)
    }
    if (removed.size > 0) writeFileDurable(this.file, `${JSON.stringify(this.sources, null, 2)}\n`)
    return removed
  }

  status(tenantId: string, timelineId: string): WalReceiverStatus | null {
    return this.receivers.get(`${tenantId}/${timelineId}`)?.status ?? null
  }

  async stopAll(): Promise<void> {
    const all = [...this.receivers.values()]
    this.receivers.clear()
    await Promise.all(all.map((r) => r.stop()))
  }

  private start(tl: Timeline, source: WalSource): void {
    const id = `${tl.tenantId}/${tl.timelineId}`
    let clock = this.clocks.get(id)
    if (!clock) {
      clock = new LsnClock()
      this.clocks.set(id, clock)
    }
    this.receivers.set(id, new WalReceiver(this.ps, tl, source, clock))
  }
}
