/**
 * WAL in: a safekeeper is a physical replication client of the compute of its current term, as
 * `pg_receivewal --synchronous` is; the writing and the group-commit acknowledgements are wal-intake.ts,
 * so a commit waiting for this safekeeper in `synchronous_standby_names` returns as soon as its record is
 * on disk.
 *
 * A session holds the timeline's writer lock from IDENTIFY_SYSTEM to its end, so that it never writes
 * while peer recovery does; a compute that cannot be reached holds nothing. The store learns where
 * complete records end as it writes; the end of the last record written before an fsync is durable after
 * it, and the timeline keeps such an LSN in its control file for a restarted safekeeper to scan for the
 * end of its WAL from. A lost connection is retried with backoff; streaming resumes at the end of what
 * was written.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn } from '../postgres/lsn.js'
import type { PgClient } from '../protocol/client.js'
import { PgServerError } from '../protocol/errors.js'
import {
  connectReplication,
  parseConnstr,
  Reconnector,
  type ReplicationTarget,
  type SessionState,
} from '../protocol/replication-client.js'
import { COMPUTE_TERM_SETTING } from './config.js'
import type { SkTimeline } from './timeline.js'
import { receiveWal } from './wal-intake.js'

const BACKOFF_MAX_MS = 5000
const CONNECT_TIMEOUT_MS = 10_000
/** SQLSTATE of SHOW for a setting the server does not know. */
const UNDEFINED_OBJECT = '42704'

export class WalAcceptorError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'WalAcceptorError'
}

export interface AcceptorStatus {
  connstr: string
  term: number
  state: SessionState
  lastError: string | null
}

export class WalAcceptor {
  private client: PgClient | null = null
  /** Aborts the running session's wait for the writer lock. */
  private session = new AbortController()
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
        this.session.abort()
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
    this.session = new AbortController()
    const signal = this.session.signal
    // The compute's WAL begins where its term does (its basebackup): below that it would send whatever
    // bytes its first segment has there. What we lack of the WAL before comes from a peer (recovery.ts),
    // which runs while this session is not streaming.
    const termStart = tl.state.termHistory.at(-1)?.lsn ?? tl.store.writeLsn
    if (tl.store.writeLsn < termStart) {
      throw new WalAcceptorError(
        `the WAL ends at ${formatLsn(tl.store.writeLsn)}, below ${formatLsn(termStart)} where the compute of term ${this.term} began: waiting for a peer to hand over the rest`,
        { kind: 'unavailable' },
      )
    }
    const { client, system } = await connectReplication(target, {
      applicationName: this.applicationName,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    })
    this.client = client
    if (this.loop.isStopped) return
    tl.checkSystem(system.systemId, system.timeline, this.connstr)
    await this.checkTerm(client)
    const release = await tl.writer.acquire('acceptor', signal)
    try {
      await receiveWal(tl, client, {
        writer: 'acceptor',
        stopped: () => this.loop.isStopped,
        senderEnd: tl.computeEnd,
        onStreaming: (start) => {
          streaming()
          tl.log('info', 'WAL acceptor streaming', {
            compute: this.connstr,
            term: this.term,
            start: formatLsn(start),
          })
        },
      })
    } finally {
      release()
    }
  }

  /**
   * A compute started by the control plane names its term (`zenith.term`): a newer term's compute may
   * listen where ours did, and pulling from it in our term would mix its WAL into ours and count us for
   * its commits. A compute that names no term (one started by hand) is taken as the compute of ours.
   */
  private async checkTerm(client: PgClient): Promise<void> {
    let named: string | null
    try {
      named = (await client.query(`SHOW ${COMPUTE_TERM_SETTING}`)).rows[0]?.[0] ?? null
    } catch (err) {
      if (err instanceof PgServerError && err.code === UNDEFINED_OBJECT) return
      throw err
    }
    if (named !== String(this.term)) {
      throw new WalAcceptorError(
        `${this.connstr} is the compute of term ${named}, not of term ${this.term} that this safekeeper is in: it does not pull from it`,
      )
    }
  }
}
