/**
 * A minimal router for the management APIs of the pageserver and the safekeepers: routes by method and
 * path pattern, JSON in and out, and the one place that turns errors into status codes with Neon's
 * `{"msg": ...}` body: a ZenithError by its kind, anything else as a bug (500, logged with its stack).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { asZenithError, type ErrorKind, ZenithError } from '../lib/errors.js'
import type { LogFn } from '../lib/log.js'

/** Every error: the status code says the kind, `msg` what went wrong. */
export interface ErrorBody {
  msg: string
}

export const HTTP_STATUS: Record<ErrorKind, number> = {
  user_input: 400,
  not_found: 404,
  conflict: 409,
  timeout: 408,
  unavailable: 503,
  external: 500,
  corruption: 500,
  bug: 500,
}

/** The kind an HTTP status stands for, for clients: the table above read backwards. */
export function kindOfStatus(status: number): ErrorKind {
  if (status === 405 || status === 413) return 'user_input'
  const kinds = Object.entries(HTTP_STATUS).filter(([, s]) => s === status)
  if (kinds.length > 0) return kinds[0][0] as ErrorKind
  return status >= 500 ? 'external' : 'user_input'
}

/** What only HTTP has words for (405, 413); everything else is said with a kind. */
export class HttpError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'HttpError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** The status and body an error is answered with. */
export function errorReply(err: unknown): { status: number; json: ErrorBody } {
  const e = asZenithError(err)
  const status = e instanceof HttpError ? e.status : HTTP_STATUS[e.kind]
  return { status, json: { msg: e.kind === 'bug' ? `this is a bug in zenith: ${e.message}` : e.message } }
}

export interface Request {
  method: string
  params: Record<string, string>
  query: URLSearchParams
  /** The parsed JSON body; undefined when there was none. */
  body: unknown
}

export type Reply = { status?: number; json?: unknown; text?: string; contentType?: string }
export type Handler = (req: Request) => Promise<Reply> | Reply

interface Route {
  method: string
  pattern: RegExp
  names: string[]
  handler: Handler
}

const MAX_BODY = 1024 * 1024

export class Router {
  private readonly routes: Route[] = []

  /** `path` segments starting with ':' are parameters, e.g. /v1/tenant/:tenant_id. */
  on(method: string, path: string, handler: Handler): this {
    const names: string[] = []
    const re = path
      .split('/')
      .map((seg) => {
        if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        names.push(seg.slice(1))
        return '([^/]+)'
      })
      .join('/')
    this.routes.push({ method, pattern: new RegExp(`^${re}$`), names, handler })
    return this
  }

  /** `onBug` hears of every failure that is not a ZenithError, before the client gets its 500. */
  async handle(req: IncomingMessage, res: ServerResponse, onBug: (err: ZenithError) => void): Promise<void> {
    let reply: Reply
    try {
      reply = await this.dispatch(req)
    } catch (err) {
      reply = errorReply(err)
      const e = asZenithError(err)
      if (e.kind === 'bug') onBug(e)
    }
    const body =
      reply.text !== undefined
        ? reply.text
        : reply.json === undefined
          ? ''
          : `${JSON.stringify(reply.json)}\n`
    res.writeHead(reply.status ?? 200, {
      'content-type': reply.contentType ?? (reply.text !== undefined ? 'text/plain' : 'application/json'),
      'content-length': Buffer.byteLength(body),
    })
    res.end(body)
  }

  private async dispatch(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = req.method ?? 'GET'
    let pathMatched = false
    for (const r of this.routes) {
      const m = r.pattern.exec(url.pathname)
      if (!m) continue
      pathMatched = true
      if (r.method !== method) continue
      const params: Record<string, string> = {}
      r.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1])
      })
      const body = await readJsonBody(req)
      return r.handler({ method, params, query: url.searchParams, body })
    }
    if (pathMatched) throw new HttpError(405, `method ${method} is not allowed on ${url.pathname}`)
    throw new ZenithError(`no such endpoint: ${method} ${url.pathname}`, { kind: 'not_found' })
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > MAX_BODY) throw new HttpError(413, `request body is larger than ${MAX_BODY} bytes`)
    chunks.push(c as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, `malformed JSON body: ${(err as Error).message}`)
  }
}

/** The body as a JSON object (an absent body counts as `{}` when allowed). */
export function objectBody(body: unknown, allowEmpty = true): Record<string, unknown> {
  if (body === undefined && allowEmpty) return {}
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(
      400,
      `request body must be a JSON object, got ${body === undefined ? 'nothing' : JSON.stringify(body)}`,
    )
  }
  return body as Record<string, unknown>
}

/**
 * An HTTP server answering with `router`; a failure that is a bug is logged with its stack, and one in
 * writing the reply itself still gets the client its error when no header went out yet.
 */
export function routerServer(router: Router, log: LogFn): Server {
  const logBug = (req: IncomingMessage, err: Error) =>
    log('error', 'HTTP request failed: this is a bug', {
      method: req.method,
      url: req.url,
      error: err.stack ?? err.message,
    })
  return createServer((req, res) => {
    router
      .handle(req, res, (err) => logBug(req, err))
      .catch((err: Error) => {
        logBug(req, err)
        if (res.headersSent) return res.destroy()
        const { status, json } = errorReply(err)
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(`${JSON.stringify(json)}\n`)
      })
  })
}
