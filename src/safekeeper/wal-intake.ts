/**
 * WAL into a timeline's store from a physical replication stream: what the acceptor (from the compute of
 * the term) and peer recovery (from a more advanced safekeeper of the term) have in common. Every
 * XLogData is written at once; fsyncs are batched — one fsync covers all that arrived while the previous
 * one ran (group commit) — and after each the sender hears write = flush = the fsynced LSN. apply stays
 * 0/0, as pg_receivewal reports it: a safekeeper never replays WAL, so computes must not use
 * remote_apply.
 *
 * The store takes writes only at its end, and two streams appending to it would interleave bytes of two
 * positions: one writer at a time holds the timeline's `WriterLock` for its whole session, and every
 * write checks that its stream is the holder, so a mistake is an error rather than mixed WAL.
 */
import { ZenithError } from '../lib/errors.js'
import type { LsnClock } from '../lib/lsn-clock.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import type { PgClient } from '../protocol/client.js'
import { encodeStandbyStatusUpdate, parsePrimaryKeepalive, parseXLogData } from '../protocol/replication.js'
import type { SkTimeline } from './timeline.js'

/** A status update at least this often, well inside the walsender's wal_sender_timeout. */
const STATUS_INTERVAL_MS = 1000

/**
 * The vote holds the lock too, while it cuts a partial record at the end, and so does a new term's
 * compute while it cuts a divergent tail.
 */
export type WriterName = 'acceptor' | 'recovery' | 'vote' | 'new term'

/** Who may write a timeline's WAL store now; a release hands it to the first waiter, in arrival order. */
export class WriterLock {
  private current: WriterName | null = null
  private readonly waiters: { who: WriterName; grant: (release: () => void) => void }[] = []

  get holder(): WriterName | null {
    return this.current
  }

  /** The release function, or null when someone else writes or waits to. */
  tryAcquire(who: WriterName): (() => void) | null {
    if (this.current !== null) return null
    return this.grant(who)
  }

  /** Waits for the store to be free; rejects when `signal` aborts first. */
  acquire(who: WriterName, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    if (this.current === null) return Promise.resolve(this.grant(who))
    return new Promise((resolve, reject) => {
      const waiter = {
        who,
        grant: (release: () => void) => {
          signal.removeEventListener('abort', abort)
          resolve(release)
        },
      }
      const abort = () => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(signal.reason)
      }
      this.waiters.push(waiter)
      signal.addEventListener('abort', abort, { once: true })
    })
  }

  private grant(who: WriterName): () => void {
    this.current = who
    let released = false
    return () => {
      if (released) return
      released = true
      this.current = null
      const next = this.waiters.shift()
      if (next) next.grant(this.grant(next.who))
    }
  }
}

export interface IntakeOptions {
  /** Which holder of the writer lock this stream writes as. */
  writer: WriterName
  /** Stop once the WAL written reaches this LSN (recovery's target); the acceptor streams on. */
  until?: Lsn
  stopped: () => boolean
  /** Hears that START_REPLICATION was accepted, and where the stream starts. */
  onStreaming?: (start: Lsn) => void
  /** Notes the sender's end of WAL as heard (the acceptor: the compute's flush LSN, for lag in seconds). */
  senderEnd?: LsnClock
}

/**
 * Runs START_REPLICATION PHYSICAL at the end of the WAL written and writes what arrives into the store,
 * until the stream ends, `stopped()`, or the WAL reaches `until`; resolves once the last fsync is done.
 * The caller holds the writer lock as `opts.writer` for the whole call.
 */
export async function receiveWal(tl: SkTimeline, client: PgClient, opts: IntakeOptions): Promise<void> {
  const store = tl.store
  const startLsn = store.writeLsn
  const stream = await client.copyBoth(`START_REPLICATION PHYSICAL ${formatLsn(startLsn)}`)
  opts.onStreaming?.(startLsn)

  let lastStatus = { flush: -1, at: 0 }
  /** What the sender has been told is durable: for a compute, held back while the pageserver lags. */
  let acked = store.flushLsn
  const sendStatus = (flush: Lsn, force: boolean) => {
    const now = Date.now()
    if (!force && flush === lastStatus.flush && now - lastStatus.at < STATUS_INTERVAL_MS) return
    if (client.closed) return
    stream.send(encodeStandbyStatusUpdate({ write: flush, flush, apply: 0 }))
    lastStatus = { flush, at: now }
  }
  // Positions told never go back: a truthful answer to a reply request may overtake a held ack.
  const ack = (lsn: Lsn) => {
    acked = Math.max(acked, lsn)
    sendStatus(acked, true)
  }
  /**
   * Backpressure: the compute's commits wait for acks, so holding them slows it down to what the
   * pageserver takes, instead of the pageserver falling behind without bound. Only the ack waits: fsyncs
   * go on, so what the compute sends is durable here whenever it asks.
   */
  let held: Lsn | null = null
  const hold = (lsn: Lsn) => {
    tl.metrics.acksDelayed.inc()
    const waiting = held !== null
    held = lsn
    if (waiting) return
    void tl
      .pageserverCaughtUp(() => client.closed || opts.stopped())
      .then(() => {
        const release = held
        held = null
        if (release !== null) ack(release)
      })
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
        const [fsyncsBefore, started] = [store.fsyncCount, performance.now()]
        const lsn = await store.flush()
        tl.metrics.flushSeconds.observe((performance.now() - started) / 1000)
        tl.metrics.fsyncs.inc(store.fsyncCount - fsyncsBefore)
        tl.flushed(recordEnd)
        if (held !== null || (opts.writer === 'acceptor' && tl.pageserverTooFarBehind())) hold(lsn)
        else ack(lsn)
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
      if (opts.stopped()) break
      if (msg[0] === 0x77 /* 'w' */) {
        const x = parseXLogData(msg)
        opts.senderEnd?.note(x.walEnd)
        if (tl.writer.holder !== opts.writer) {
          throw new ZenithError(
            `the ${opts.writer} got WAL at ${formatLsn(x.walStart)} while the WAL store belongs to ${tl.writer.holder ?? 'no one'}`,
            { kind: 'bug' },
          )
        }
        store.write(x.walStart, x.data)
        tl.metrics.walBytesIn.inc(x.data.length)
        flush()
        if (opts.until !== undefined && store.writeLsn >= opts.until) break
      } else if (msg[0] === 0x6b /* 'k' */) {
        const k = parsePrimaryKeepalive(msg)
        // A keepalive's walEnd is what Postgres has sent (sentPtr), which may lag the end its last XLogData
        // named: it only raises the clock, never starts it afresh.
        if (opts.senderEnd && k.walEnd > (opts.senderEnd.end ?? -1)) opts.senderEnd.note(k.walEnd)
        // A walsender asks for a reply when it must know: a shutting-down compute waits for the flush
        // of its last WAL, so a held-back ack would hold the shutdown until the pageserver catches up —
        // for ever, if it cannot. The answer is the truth; backpressure holds the acks of later WAL.
        if (k.replyRequested) ack(store.flushLsn)
      }
    }
  } finally {
    clearInterval(timer)
    // A flush started after the last one began must still run: the caller's `until` needs it durable.
    while (flushing) await flushing
  }
}
