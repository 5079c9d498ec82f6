/**
 * The management APIs of the cluster's servers as the control plane calls them: JSON over HTTP, where
 * an error status names its kind (src/protocol/http-router.ts), so a server's 404 is a `not_found` on
 * the CLI too, and a server that does not answer is `unavailable` with a hint saying how to start it.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, type HostPort } from '../lib/host-port.js'
import { HttpRequestError, type HttpResponse, httpRequest } from '../protocol/http-request.js'
import { type ErrorBody, kindOfStatus } from '../protocol/http-router.js'

export class ServerApiError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'ServerApiError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message, { kind: kindOfStatus(status) })
  }
}

export class ServerUnreachableError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'ServerUnreachableError'
}

/** A body that is not JSON (empty, or a proxy's HTML) reads as undefined. */
function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text)
  } catch {
    return undefined
  }
}

export class ApiClient {
  readonly base: string

  /** `who` names the server in messages ("the pageserver"); `startHint` says how to start it. */
  constructor(
    addr: HostPort,
    private readonly who: string,
    private readonly startHint: string,
  ) {
    this.base = `http://${formatHostPort(addr)}`
  }

  /** Requests sent so far: the dashboard holds itself to a few per server per refresh. */
  requests = 0

  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<T> {
    return parseJson(await this.send(method, path, body, timeoutMs)) as T
  }

  /** A route that answers in plain text (`/metrics`). */
  requestText(path: string, timeoutMs = 120_000): Promise<string> {
    return this.send('GET', path, undefined, timeoutMs)
  }

  private async send(method: string, path: string, body: unknown, timeoutMs: number): Promise<string> {
    this.requests++
    let res: HttpResponse
    try {
      res = await httpRequest(this.base + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      if (!(err instanceof HttpRequestError)) throw err
      throw new ServerUnreachableError(`${this.who} is not reachable at ${this.base} (${err.code})`, {
        hint: this.startHint,
      })
    }
    if (!res.ok) {
      const msg = (parseJson(res.text) as Partial<ErrorBody> | undefined)?.msg ?? res.text.trim()
      throw new ServerApiError(res.status, msg || `${method} ${path}: HTTP ${res.status}`)
    }
    return res.text
  }

  async isUp(): Promise<boolean> {
    try {
      await this.request('GET', '/v1/status', undefined, 1000)
      return true
    } catch {
      return false
    }
  }
}
