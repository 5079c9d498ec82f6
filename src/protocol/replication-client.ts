/**
 * The receiving end of physical replication, as both the pageserver (from a compute or a safekeeper) and
 * a safekeeper (from its compute) run it: a connection string naming the walsender, a replication
 * connection that has identified the server, and a loop that keeps one streaming — a session that ends
 * or fails is started again after a backoff of 0.1 s × 1.5 per failure up to a cap, reset once a session
 * gets as far as streaming. A failure the session's owner calls permanent (the walsender cannot serve what
 * is needed, so every retry would fail the same way) ends the loop as `broken` instead.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { PgClient } from './client.js'
import { type IdentifySystem, parseIdentifySystem } from './replication.js'

export const BACKOFF_START_MS = 100
const BACKOFF_FACTOR = 1.5
/**
 * A session must stream this long before its end resets the backoff: one that fails right after it
 * starts streaming (its first bytes refused, say) would otherwise be retried ten times a second.
 */
export const STABLE_SESSION_MS = 1000

export class ConnstrError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'ConnstrError'
}

export interface ReplicationTarget {
  host: string
  port: number
  user: string
}

/** `postgresql://user@host:port[/db]` or `host=... port=... user=...`; `what` names it in errors. */
export function parseConnstr(connstr: string, what = 'connection string'): ReplicationTarget {
  let host: string | undefined
  let port: number | undefined
  let user: string | undefined
  if (/^postgres(ql)?:\/\//.test(connstr)) {
    const u = new URL(connstr)
    host = u.hostname.replace(/^\[(.*)\]$/, '$1')
    port = u.port ? Number(u.port) : 5432
    user = u.username ? decodeURIComponent(u.username) : undefined
  } else {
    for (const m of connstr.matchAll(/(\w+)\s*=\s*(\S+)/g)) {
      if (m[1] === 'host') host = m[2]
      else if (m[1] === 'port') port = Number(m[2])
      else if (m[1] === 'user') user = m[2]
    }
  }
  if (!host || port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConnstrError(
      `${what} "${connstr}" is not a connection string with host and port, e.g. postgresql://postgres@127.0.0.1:55432`,
    )
  }
  return { host, port, user: user ?? 'postgres' }
}

/** A replication connection (`replication=true`) that has run IDENTIFY_SYSTEM. */
export async function connectReplication(
  target: ReplicationTarget,
  opts: { applicationName: string; connectTimeoutMs: number; options?: string },
): Promise<{ client: PgClient; system: IdentifySystem }> {
  const client = await PgClient.connect({
    host: target.host,
    port: target.port,
    user: target.user,
    params: {
      replication: 'true',
      application_name: opts.applicationName,
      ...(opts.options === undefined ? {} : { options: opts.options }),
    },
    connectTimeoutMs: opts.connectTimeoutMs,
  })
  try {
    return { client, system: parseIdentifySystem(await client.query('IDENTIFY_SYSTEM')) }
  } catch (err) {
    await client.close().catch(() => undefined)
    throw err
  }
}

export type SessionState = 'connecting' | 'streaming' | 'backoff' | 'broken' | 'stopped'

export interface ReconnectOptions {
  /**
   * One session: connects and streams until the stream ends (resolve) or fails (reject); calls
   * `streaming()` once it streams. The session's owner keeps its connection, to close it in `interrupt`.
   */
  session: (streaming: () => void) => Promise<void>
  /** Ends a running session at once (closes its connection); called by stop(). */
  interrupt: () => Promise<void>
  /** What the session's end is called when it ended without an error ("the compute ended replication"). */
  endedMessage: string
  /** Hears each failure; `repeated` when it is the same as the one before (log it once). */
  onError?: (message: string, repeated: boolean) => void
  /** Whether a failure is one no retry can cure: the loop then ends in state `broken`. */
  isPermanent?: (err: unknown) => boolean
  backoffMaxMs: number
}

/** Runs sessions one after another until stopped; its state and last error are for status output. */
export class Reconnector {
  state: SessionState = 'connecting'
  lastError: string | undefined
  private stopped = false
  private wake: (() => void) | null = null
  private readonly done: Promise<void>

  constructor(private readonly opts: ReconnectOptions) {
    this.done = this.run()
  }

  get isStopped(): boolean {
    return this.stopped
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.state = 'stopped'
    this.wake?.()
    await this.opts.interrupt().catch(() => undefined)
    await this.done
  }

  private async run(): Promise<void> {
    let backoff = BACKOFF_START_MS
    while (!this.stopped) {
      let streamingSince: number | null = null
      try {
        this.state = 'connecting'
        await this.opts.session(() => {
          this.state = 'streaming'
          this.lastError = undefined
          streamingSince = Date.now()
        })
        if (!this.stopped) this.lastError = this.opts.endedMessage
      } catch (err) {
        if (this.stopped) break
        const msg = (err as Error).message
        if (this.opts.isPermanent?.(err)) {
          this.lastError = msg
          this.state = 'broken'
          return
        }
        this.opts.onError?.(msg, msg === this.lastError)
        this.lastError = msg
      } finally {
        await this.opts.interrupt().catch(() => undefined)
      }
      if (streamingSince !== null && Date.now() - streamingSince >= STABLE_SESSION_MS)
        backoff = BACKOFF_START_MS
      if (this.stopped) break
      this.state = 'backoff'
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoff)
        this.wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.wake = null
      backoff = Math.min(this.opts.backoffMaxMs, Math.round(backoff * BACKOFF_FACTOR))
    }
    this.state = 'stopped'
  }
}
