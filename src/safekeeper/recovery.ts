/**
 * Peer recovery: a safekeeper behind a peer of its own term fetches the WAL it lacks from that peer, so
 * that it catches up when the compute no longer has that WAL (recycled while this safekeeper was down)
 * or never had it (started above this safekeeper's flush LSN by an election), and when there is no
 * compute at all.
 *
 * Every 500 ms the timeline is asked for a donor (quorum.ts `recoveryDonor`, over what peers.ts last
 * heard): only while its acceptor is not streaming — a streaming compute brings the WAL itself. With a
 * donor and the writer lock free, one session connects to the donor's walsender with `-c term=<T>` in
 * its startup options, which makes the donor serve up to its flush LSN rather than commit_lsn, and only
 * while its own term is T (walsender.ts); it runs START_REPLICATION at the end of this safekeeper's WAL
 * and writes what arrives as the acceptor does (wal-intake.ts), until the donor's flush LSN of when it
 * started is durable here. Then it stops; the next check starts another if the donor got further.
 *
 * The session holds the writer lock throughout, so the acceptor waits for it before streaming again; a
 * vote cancels it before the election touches the WAL.
 */
import { ZenithError } from '../lib/errors.js'
import { parseHostPort } from '../lib/host-port.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import type { PgClient } from '../protocol/client.js'
import { connectReplication } from '../protocol/replication-client.js'
import type { RecoveryState } from './api-types.js'
import type { PeerReport, SkTimeline } from './timeline.js'
import { receiveWal } from './wal-intake.js'

const CHECK_INTERVAL_MS = 500
const CONNECT_TIMEOUT_MS = 5000

export interface RecoveryStatus {
  /** The donor, by the address peers.ts knows it under. */
  from: string
  state: RecoveryState
  startLsn: Lsn
  untilLsn: Lsn
  lastError: string | null
}

export interface Donor extends PeerReport {
  peer: string
  pgAddr: string
}

export class PeerRecovery {
  status: RecoveryStatus | null = null
  private readonly timer: NodeJS.Timeout
  private running: Promise<void> | null = null
  private session: AbortController | null = null
  private client: PgClient | null = null
  private lastLoggedError: string | null = null

  constructor(
    private readonly tl: SkTimeline,
    private readonly applicationName: string,
  ) {
    this.timer = setInterval(() => this.check(), CHECK_INTERVAL_MS)
  }

  /** Ends the running session, if any, keeping what it made durable. */
  async cancel(): Promise<void> {
    this.session?.abort()
    await this.client?.close()
    await this.running
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.cancel()
  }

  private check(): void {
    if (this.running) return
    const donor = this.tl.recoveryDonor()
    if (donor === null) return
    const release = this.tl.writer.tryAcquire('recovery')
    if (release === null) return
    this.running = this.recover(donor).finally(() => {
      release()
      this.running = null
    })
  }

  private async recover(donor: Donor): Promise<void> {
    const tl = this.tl
    const session = new AbortController()
    this.session = session
    const startLsn = tl.store.writeLsn
    const startedAt = Date.now()
    const status: RecoveryStatus = {
      from: donor.peer,
      state: 'recovering',
      startLsn,
      untilLsn: donor.flushLsn,
      lastError: null,
    }
    this.status = status
    try {
      const target = parseHostPort(donor.pgAddr, `the walsender address of peer ${donor.peer}`)
      const { client, system } = await connectReplication(
        { ...target, user: 'postgres' },
        {
          applicationName: this.applicationName,
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          options: `-c tenant_id=${tl.tenantId} -c timeline_id=${tl.timelineId} -c term=${donor.term}`,
        },
      )
      this.client = client
      if (session.signal.aborted) return
      tl.checkSystem(system.systemId, system.timeline, `peer ${donor.peer}`)
      await receiveWal(tl, client, {
        writer: 'recovery',
        until: donor.flushLsn,
        stopped: () => session.signal.aborted,
      })
      if (session.signal.aborted) return
      if (tl.store.flushLsn < donor.flushLsn) {
        throw new ZenithError(
          `peer ${donor.peer} ended the stream at ${formatLsn(tl.store.flushLsn)}, before ${formatLsn(donor.flushLsn)}`,
          { kind: 'unavailable' },
        )
      }
      status.state = 'done'
      this.lastLoggedError = null
      tl.log(
        'info',
        `recovered WAL from peer ${donor.id ?? donor.peer} up to ${formatLsn(tl.store.flushLsn)}`,
        {
          peer: donor.peer,
          from: formatLsn(startLsn),
          bytes: tl.store.flushLsn - startLsn,
          ms: Date.now() - startedAt,
        },
      )
    } catch (err) {
      if (session.signal.aborted) return
      const msg = (err as Error).message
      status.state = 'failed'
      status.lastError = msg
      if (msg !== this.lastLoggedError) {
        tl.log('warn', 'peer recovery failed, will retry', { peer: donor.peer, error: msg })
        this.lastLoggedError = msg
      }
    } finally {
      if (session.signal.aborted) status.state = 'cancelled'
      const c = this.client
      this.client = null
      this.session = null
      await c?.close()
    }
  }
}
