/**
 * WAL in: a safekeeper is a physical replication client of the compute of its current term, as
 * `pg_receivewal --synchronous` is. Every XLogData is written to the WAL store at once; fsyncs are
 * batched — one fsync covers all that arrived while the previous one ran (group commit) — and after each
 * the compute hears write = flush = the fsynced LSN, so a commit waiting for this safekeeper in
 * `synchronous_standby_names` returns as soon as its record is on disk. apply stays 0/0, as
 * pg_receivewal reports it: a safekeeper never replays WAL, so computes must not use remote_apply.
 *
 * The store learns where complete records end as it writes; the end of the last record written before an
 * fsync is durable after it, and the timeline keeps such an LSN in its control file for a restarted
 * safekeeper to scan for the end of its WAL from. A lost connection is retried with backoff; streaming
 * resumes at the end of what was written.
 */
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import type { PgClient } from '../protocol/client.js'
import { encodeStandbyStatusUpdate, parsePrimaryKeepalive, parseXLogData } from '../protocol/replication.js'
import {
  connectReplication,
  parseConnstr,
  Reconnector,
  type ReplicationTarget,
  type SessionState,
} from '../protocol/replication-client.js'
import type { SkTimeline } from './timeline.js'

const BACKOFF_MAX_MS = 5000
const CONNECT_TIMEOUT_MS = 10_000
/** A status update at least this often, well inside the walsender's wal_sender_timeout. */
const STATUS_INTERVAL_MS = 1000

export interface AcceptorStatus {
  connstr: string
  term: number
  state: SessionState
  lastError: string | null
}

export class WalAcceptor {
  private client: PgClient | null = null
  private readonly loop: Reconnector

  constructor(
    private readonly tl: SkTimeline,
    readonly connstr: string,
    readonly term: number,
    private readonly applicationName: string,
  ) {
    const target = parseConnstr(connstr, 'compute')
    this.loop = new Reconnector({
      session: (streaming) => this.stream(target, streaming),
      interrupt: async () => {
        const c = this.client
        this.client = null
        await c?.close()
      },
      endedMessage: 'the compute ended replication',
      onError: (error, repeated) => {
        if (!repeated) tl.log('warn', 'WAL acceptor connection failed, retrying', { compute: connstr, error })
      },
      backoffMaxMs: BACKOFF_MAX_MS,
    })
  }

  get status(): AcceptorStatus {
    return {
      connstr: this.connstr,
      term: this.term,
      state: this.loop.state,
      lastError: this.loop.lastError ?? null,
    }
  }

  stop(): Promise<void> {
    return this.loop.stop()
  }

  private async stream(target: ReplicationTarget, streaming: () => void): Promise<void> {
    const tl = this.tl
    const { client, system } = await connectReplication(target, {
      applicationName: this.applicationName,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    })
    this.client = client
    if (this.loop.isStopped) return
    tl.checkSystem(system.systemId, system.timeline, this.connstr)
    const store = tl.store
    const startLsn = store.writeLsn
    const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(startLsn)}`)
    streaming()
    tl.log('info', 'WAL acceptor streaming', {
      compute: this.connstr,
      term: this.term,
      start: formatLsn(startLsn),
    })

    let lastStatus = { flush: -1, at: 0 }
    /** What the compute has been told is durable: held back while the pageserver lags too far. */
    let acked = store.flushLsn
    const sendStatus = (flush: Lsn, force: boolean) => {
      const now = Date.now()
      if (!force && flush === lastStatus.flush && now - lastStatus.at < STATUS_INTERVAL_MS) return
      if (client.closed) return
      stream.send(encodeStandbyStatusUpdate({ write: flush, flush, apply: 0 }))
      lastStatus = { flush, at: now }
    }
    // Group commit: while an fsync runs, what arrives waits for the next one, which covers it all.
    let flushing: Promise<void> | null = null
    let again = false
    const flush = () => {
      if (flushing) {
        again = true
        return
      }
      flushing = (async () => {
        do {
          again = false
          // Every record that ended before this fsync started is durable once it returns.
          const recordEnd = store.endRecordLsn
          const lsn = await store.flush()
          tl.flushed(recordEnd)
          // Backpressure: commits wait for this ack, so holding it slows the compute down to what the
          // pageserver takes, instead of the pageserver falling behind without bound.
          if (tl.pageserverTooFarBehind()) {
            tl.metrics.acksDelayed++
            await tl.pageserverCaughtUp(() => client.closed || this.loop.isStopped)
          }
          acked = lsn
          sendStatus(acked, true)
        } while (again && !client.closed)
      })()
        .catch((err: Error) => {
          // A failed fsync leaves nothing to trust in what was written after the last good one.
          tl.log('error', 'WAL fsync failed', { error: err.message })
          void client.close()
        })
        .finally(() => {
          flushing = null
        })
    }
    const timer = setInterval(() => sendStatus(acked, false), STATUS_INTERVAL_MS)
    try {
      for await (const msg of stream) {
        if (this.loop.isStopped) break
        if (msg[0] === 0x77 /* 'w' */) {
          const x = parseXLogData(msg)
          store.write(x.walStart, x.data)
          tl.metrics.walBytesIn += x.data.length
          flush()
        } else if (msg[0] === 0x6b /* 'k' */) {
          if (parsePrimaryKeepalive(msg).replyRequested) sendStatus(acked, true)
        }
      }
    } finally {
      clearInterval(timer)
      await flushing
    }
  }
}
