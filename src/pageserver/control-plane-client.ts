/**
 * The pageserver's side of the storage controller (pageserver.toml's `control_plane_api` and `id`):
 *
 *     reAttach()                 at start-up: the tenants attached here, each with its new generation
 *                                and mode; retried with backoff until the controller answers, since a
 *                                pageserver that made up generations could overwrite a newer one's objects
 *     validate(tenant, gen)      whether the generation is still current, asked before deleting objects
 *                                and before advancing remote_consistent_lsn (RFC 025)
 *
 * Validations are batched as Neon's are: calls made within BATCH_MS of each other, or while a request
 * is in flight, go out together in one POST, and each caller gets its own tenant's answer. A failed
 * request fails every call in it; the upload queues retry with their own backoff.
 */

import { LOCATION_MODES, type Location, type LocationMode } from '../engine/location.js'
import { pause } from '../engine/task-manager.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogFn } from '../lib/log.js'
import { HttpRequestError, type HttpResponse, httpRequest } from '../protocol/http-request.js'
import type { ControlPlaneConfig } from './config.js'

export class ControlPlaneError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'ControlPlaneError'
}

/** How long a validation waits for others to join its request. */
const BATCH_MS = 5
const REQUEST_TIMEOUT_MS = 10_000

interface Pending {
  id: string
  gen: number
  resolve: (valid: boolean) => void
  reject: (err: Error) => void
}

export class ControlPlaneClient {
  private pending: Pending[] = []
  private timer: NodeJS.Timeout | null = null
  private inFlight: Promise<void> | null = null
  private readonly closed = new AbortController()
  private readonly backoff: { baseMs: number; maxMs: number }

  constructor(
    readonly config: ControlPlaneConfig,
    private readonly log: LogFn,
    opts: { backoff?: { baseMs: number; maxMs: number } } = {},
  ) {
    this.backoff = opts.backoff ?? { baseMs: 100, maxMs: 5000 }
  }

  /**
   * The tenants the controller has attached to this node, each with its generation, bumped for this
   * start. Asks until it answers (each failure logged), or until close().
   */
  async reAttach(): Promise<Map<string, Location>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.post('re-attach', { node_id: this.config.nodeId })
        return parseReAttach(res)
      } catch (err) {
        if (this.closed.signal.aborted) throw new ControlPlaneError('stopped while waiting for re-attach')
        const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (attempt - 1))
        this.log('warn', 're-attach failed; retrying', {
          controlPlane: this.config.api,
          attempt,
          retryInMs: delay,
          error: (err as Error).message,
        })
        await pause(delay, this.closed.signal)
      }
    }
  }

  /** Whether `generation` is still the tenant's current one at the controller. */
  validate(tenantId: string, generation: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ id: tenantId, gen: generation, resolve, reject })
      if (this.timer === null && this.inFlight === null)
        this.timer = setTimeout(() => this.sendBatch(), BATCH_MS)
    })
  }

  /** Ends a re-attach that is still retrying, and fails validations not yet sent. */
  close(): void {
    this.closed.abort()
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    for (const p of this.pending.splice(0)) p.reject(new ControlPlaneError('the pageserver is stopping'))
  }

  private sendBatch(): void {
    this.timer = null
    const batch = this.pending.splice(0)
    if (batch.length === 0) return
    this.inFlight = (async () => {
      try {
        const res = await this.post('validate', { tenants: batch.map(({ id, gen }) => ({ id, gen })) })
        const answers = parseValidate(
          res,
          batch.map((p) => p.id),
        )
        for (const [i, p] of batch.entries()) p.resolve(answers[i])
      } catch (err) {
        for (const p of batch) p.reject(err as Error)
      }
    })().finally(() => {
      this.inFlight = null
      // What queued up meanwhile goes out now, in one request.
      if (this.pending.length > 0 && !this.closed.signal.aborted) this.sendBatch()
    })
  }

  private async post(what: 're-attach' | 'validate', body: unknown): Promise<unknown> {
    const url = new URL(what, this.config.api).toString()
    let res: HttpResponse
    try {
      res = await httpRequest(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([this.closed.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      })
    } catch (err) {
      if (!(err instanceof HttpRequestError)) throw err
      throw new ControlPlaneError(`the storage controller is not reachable at ${url} (${err.code})`, {
        hint: 'start it with `zenith storage-controller start`',
      })
    }
    if (!res.ok) throw new ControlPlaneError(`${what} at ${url}: HTTP ${res.status}: ${res.text.trim()}`)
    try {
      return JSON.parse(res.text)
    } catch {
      throw new ControlPlaneError(`${what} at ${url}: the answer is not JSON: ${res.text.slice(0, 200)}`)
    }
  }
}

function badAnswer(what: string, why: string): ControlPlaneError {
  return new ControlPlaneError(`the storage controller's ${what} answer ${why}`, { kind: 'external' })
}

function parseReAttach(res: unknown): Map<string, Location> {
  const tenants = (res as { tenants?: unknown })?.tenants
  if (!Array.isArray(tenants)) throw badAnswer('re-attach', 'has no list "tenants"')
  const out = new Map<string, Location>()
  for (const t of tenants as { id?: unknown; gen?: unknown; mode?: unknown }[]) {
    const { id, gen, mode } = t ?? {}
    if (typeof id !== 'string' || typeof gen !== 'number' || !LOCATION_MODES.includes(mode as LocationMode))
      throw badAnswer('re-attach', `has an entry that is not {id, gen, mode}: ${JSON.stringify(t)}`)
    out.set(id, { generation: gen, mode: mode as LocationMode })
  }
  return out
}

/** The answers in the order asked: the controller answers each entry in place. */
function parseValidate(res: unknown, ids: readonly string[]): boolean[] {
  const tenants = (res as { tenants?: unknown })?.tenants
  if (!Array.isArray(tenants) || tenants.length !== ids.length)
    throw badAnswer('validate', `does not have ${ids.length} entries in "tenants"`)
  return tenants.map((t: { id?: unknown; valid?: unknown }, i) => {
    if (t?.id !== ids[i])
      throw badAnswer('validate', `names ${JSON.stringify(t?.id)} where ${ids[i]} was asked`)
    return t.valid === true
  })
}
