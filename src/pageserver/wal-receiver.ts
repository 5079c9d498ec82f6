/**
 * WAL receivers: per timeline with a WAL source, a physical replication connection to the compute's
 * walsender (IDENTIFY_SYSTEM, START_REPLICATION PHYSICAL at the next record after last_record_lsn).
 * XLogData is decoded and ingested as it arrives, and standby status updates report write = last byte
 * received, flush = disk_consistent_lsn, apply = remote_consistent_lsn — the compute names the
 * pageserver in synchronous_standby_names, so its commits wait for `write`. A shutting-down compute
 * waits for `flush` to cover all it sent, so when the walsender asks for a reply with nothing left to
 * send, the timeline is checkpointed first. A lost connection is retried with backoff (the compute
 * restarts, or is not up yet).
 *
 * The sources are kept in `wal_sources.json` in the pageserver's working directory, so a restarted
 * pageserver reconnects by itself.
 */

import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Timeline } from '../engine/timeline.js'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { controlFileOf } from '../pgdata/datadir-keyspace.js'
import { WalIngest } from '../pgdata/walingest.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { WalDecoder } from '../postgres/wal-decoder.js'
import type { PgClient } from '../protocol/client.js'
import { encodeStandbyStatusUpdate, parsePrimaryKeepalive, parseXLogData } from '../protocol/replication.js'
import {
  connectReplication,
  parseConnstr,
  Reconnector,
  type ReplicationTarget,
  type SessionState,
} from '../protocol/replication-client.js'
import type { Pageserver } from './pageserver.js'

export const WAL_SOURCES_FILE = 'wal_sources.json'
/** The name the compute's synchronous_standby_names must list. */
export const WAL_RECEIVER_APPLICATION_NAME = 'pageserver'

const BACKOFF_MAX_MS = 5000
/** A status update at least this often, well inside the walsender's wal_sender_timeout. */
const STATUS_INTERVAL_MS = 1000

export interface WalReceiverStatus {
  connstr: string
  status: SessionState
  lastReceivedLsn?: Lsn
  /** Microseconds since the Unix epoch, as Neon reports it. */
  lastReceivedTsUs?: number
  lastError?: string
}

export class WalSourceError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalSourceError'
}

class WalReceiver {
  /** What the stream has received; the loop knows whether it is streaming and why not. */
  readonly state: Omit<WalReceiverStatus, 'status' | 'lastError'>
  private client: PgClient | null = null
  private readonly loop: Reconnector

  constructor(
    private readonly ps: Pageserver,
    private readonly tl: Timeline,
    connstr: string,
  ) {
    this.state = { connstr }
    const target = parseConnstr(connstr, 'WAL source')
    this.loop = new Reconnector({
      session: (streaming) => this.stream(target, streaming),
      interrupt: async () => {
        const c = this.client
        this.client = null
        await c?.close()
      },
      endedMessage: 'the compute ended replication',
      onError: (error, repeated) => {
        if (!repeated)
          this.ps.log('warn', 'WAL receiver connection failed, retrying', {
            tenantId: tl.tenantId,
            timelineId: tl.timelineId,
            source: connstr,
            error,
          })
      },
      backoffMaxMs: BACKOFF_MAX_MS,
    })
  }

  /** The receiver's state for timeline detail: the loop's, with what the stream has received. */
  get status(): WalReceiverStatus {
    return { ...this.state, status: this.loop.state, lastError: this.loop.lastError }
  }

  stop(): Promise<void> {
    return this.loop.stop()
  }

  private async stream(target: ReplicationTarget, streaming: () => void): Promise<void> {
    const tl = this.tl
    const { client, system: sys } = await connectReplication(target, {
      applicationName: WAL_RECEIVER_APPLICATION_NAME,
      connectTimeoutMs: this.ps.tenant(tl.tenantId).config.walreceiver_connect_timeout,
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
    const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(startLsn)}`)
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
    let lastSent = { write: -1, flush: -1, at: 0 }
    const sendStatus = (force: boolean) => {
      const flush = tl.diskConsistentLsn
      const now = Date.now()
      if (
        !force &&
        received === lastSent.write &&
        flush === lastSent.flush &&
        now - lastSent.at < STATUS_INTERVAL_MS
      )
        return
      stream.send(encodeStandbyStatusUpdate({ write: received, flush, apply: flush }))
      lastSent = { write: received, flush, at: now }
    }
    // One reply for all the XLogData a socket read brought: commits wait for it, but a reply per message
    // costs a syscall each and would make the pageserver the compute's bottleneck.
    let replyScheduled = false
    const scheduleReply = () => {
      if (replyScheduled) return
      replyScheduled = true
      setImmediate(() => {
        replyScheduled = false
        if (client.closed) return
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
    try {
      for await (const msg of stream) {
        if (this.loop.isStopped) break
        const kind = msg[0]
        if (kind === 0x77 /* 'w' */) {
          const x = parseXLogData(msg)
          if (x.walStart !== received) {
            throw new WalSourceError(
              `the walsender sent WAL from ${formatLsn(x.walStart)}, expected ${formatLsn(received)}`,
            )
          }
          decoder.feed(x.data)
          received += x.data.length
          let records = 0
          for (let rec = decoder.next(); rec !== null; rec = decoder.next()) {
            ingest.ingest(rec)
            records++
          }
          this.state.lastReceivedLsn = received
          this.state.lastReceivedTsUs = Date.now() * 1000
          this.ps.metrics.walIngestBytes.inc(x.data.length)
          this.ps.metrics.walIngestRecords.inc(records)
          scheduleReply()
        } else if (kind === 0x6b /* 'k' */) {
          const k = parsePrimaryKeepalive(msg)
          this.state.lastReceivedTsUs = Date.now() * 1000
          ingest.commit()
          // A walsender that has sent everything and asks for a reply is waiting for `flush` to reach
          // its end, as a shutting-down compute does: make what was received durable, then answer.
          if (k.replyRequested && k.walEnd <= received && tl.lastRecordLsn === received) {
            if (tl.diskConsistentLsn < tl.lastRecordLsn) await tl.checkpoint()
          }
          sendStatus(k.replyRequested)
        }
      }
    } finally {
      clearInterval(timer)
      ingest.commit()
    }
  }
}

/** The saved sources: none when the file does not exist; a damaged file is an error naming it. */
function readSources(file: string): Record<string, string> {
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
  if (
    typeof doc !== 'object' ||
    doc === null ||
    Array.isArray(doc) ||
    Object.values(doc).some((v) => typeof v !== 'string')
  )
    throw new WalSourceError(
      `${file} must map "<tenant_id>/<timeline_id>" to connection strings; fix or remove it`,
    )
  return doc as Record<string, string>
}

export class WalReceivers {
  private readonly receivers = new Map<string, WalReceiver>()
  private sources: Record<string, string> = {}
  private readonly file: string

  constructor(private readonly ps: Pageserver) {
    this.file = path.join(ps.workdir, WAL_SOURCES_FILE)
  }

  /** Connects every timeline whose source was saved, skipping timelines that no longer exist. */
  startAll(): void {
    this.sources = readSources(this.file)
    for (const [id, connstr] of Object.entries(this.sources)) {
      const [tenantId, timelineId] = id.split('/')
      try {
        this.start(this.ps.timeline(tenantId, timelineId), connstr)
      } catch (err) {
        this.ps.log('warn', 'WAL source of a missing timeline ignored', {
          timeline: id,
          error: (err as Error).message,
        })
      }
    }
  }

  /** Sets (or with null, removes) a timeline's WAL source, replacing a running receiver. */
  async set(tenantId: string, timelineId: string, connstr: string | null): Promise<void> {
    const tl = this.ps.timeline(tenantId, timelineId)
    const id = `${tl.tenantId}/${tl.timelineId}`
    if (connstr !== null) parseConnstr(connstr, 'WAL source')
    const running = this.receivers.get(id)
    if (running && running.state.connstr === connstr) return
    this.receivers.delete(id)
    await running?.stop()
    if (connstr === null) delete this.sources[id]
    else this.sources[id] = connstr
    writeFileDurable(this.file, `${JSON.stringify(this.sources, null, 2)}\n`)
    if (connstr !== null) this.start(tl, connstr)
  }

  status(tenantId: string, timelineId: string): WalReceiverStatus | null {
    return this.receivers.get(`${tenantId}/${timelineId}`)?.status ?? null
  }

  async stopAll(): Promise<void> {
    const all = [...this.receivers.values()]
    this.receivers.clear()
    await Promise.all(all.map((r) => r.stop()))
  }

  private start(tl: Timeline, connstr: string): void {
    this.receivers.set(`${tl.tenantId}/${tl.timelineId}`, new WalReceiver(this.ps, tl, connstr))
  }
}
