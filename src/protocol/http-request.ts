/**
 * The one HTTP client of zenith's processes: a request on node:http, its whole answer read as text.
 *
 *     httpRequest(url, opts)   { status, ok, text }; a request that gets no answer is an HttpRequestError
 *                              whose `code` says why: ECONNREFUSED, ECONNRESET, "timed out", "aborted"
 *
 * Not the global fetch: undici parses HTTP with llhttp compiled to WebAssembly, and instantiating it
 * reserves a Wasm memory with its guard regions, 10 GiB of address space (an idle process goes from 0.7 to
 * 11 GiB of VSZ at its first fetch), so under the 2 GiB RLIMIT_AS zenith must run in the first fetch
 * fails ("Cannot allocate Wasm memory"). node:http parses in C and reserves nothing.
 *
 * Connections are kept alive by Node's global agent, whose idle sockets do not hold a CLI's exit. A kept
 * connection the server closes as the request goes out (its keep-alive timeout) resets it before any
 * answer; such a request never reached the server's handler, so it is sent once more on a new connection.
 */
import http from 'node:http'
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export interface HttpRequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string
  /** Ends the request, or the wait for the rest of its answer: a timeout is AbortSignal.timeout(ms). */
  signal?: AbortSignal
}

export interface HttpResponse {
  status: number
  /** A 2xx status. */
  ok: boolean
  text: string
}

/** No answer came: the server is down, hung up, or the signal ended the wait. */
export class HttpRequestError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'HttpRequestError'
  constructor(
    readonly url: string,
    /** The socket's error code (ECONNREFUSED, …), or "timed out" / "aborted" when the signal fired. */
    readonly code: string,
    cause?: unknown,
  ) {
    super(`${url}: ${code}`, { cause })
  }
}

function abortCode(signal: AbortSignal): string {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'timed out' : 'aborted'
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message
}

export async function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  try {
    return await attempt(url, opts)
  } catch (err) {
    if (!(err instanceof StaleConnectionError)) throw err
    return attempt(url, opts)
  }
}

/** A reset on a reused keep-alive connection before any of the answer came. */
class StaleConnectionError extends HttpRequestError {}

function attempt(url: string, opts: HttpRequestOptions): Promise<HttpResponse> {
  const { signal } = opts
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new HttpRequestError(url, abortCode(signal)))
      return
    }
    const headers = { ...opts.headers }
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body))
    let settled = false
    const settle = (outcome: () => void) => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      outcome()
    }
    let answered = false
    const fail = (code: string, cause?: unknown) =>
      settle(() => {
        req.destroy()
        const stale = code === 'ECONNRESET' && req.reusedSocket && !answered
        reject(new (stale ? StaleConnectionError : HttpRequestError)(url, code, cause))
      })
    const onAbort = () => fail(abortCode(signal!))

    const req = http.request(url, { method: opts.method ?? 'GET', headers }, (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        settle(() => {
          const status = res.statusCode ?? 0
          resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') })
        }),
      )
      res.on('error', (err) => fail(errorCode(err), err))
      // A connection closed before the end of the body: no 'end', and not always an 'error'.
      res.on('close', () => {
        if (!res.complete) fail('ECONNRESET')
      })
    })
    req.on('error', (err) => fail(errorCode(err), err))
    signal?.addEventListener('abort', onAbort, { once: true })
    req.end(opts.body)
  })
}
