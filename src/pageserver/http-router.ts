/**
 * A minimal router for the management API: routes by method and path pattern, JSON in and out, and
 * one place that turns errors into status codes with Neon's `{"msg": ...}` body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
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

  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    mapError: (err: Error) => HttpError | null,
  ): Promise<void> {
    let reply: Reply
    try {
      reply = await this.dispatch(req)
    } catch (err) {
      const e = err instanceof HttpError ? err : mapError(err as Error)
      if (!e) throw err
      reply = { status: e.status, json: { msg: e.message } }
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
    throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`)
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
