/**
 * httpRequest against real node:http servers on loopback: answers of every status with their bodies,
 * and each way of getting no answer named by its code. The last tests run a request in a child Node
 * whose address space may not grow by 1 GiB more, where the global fetch fails on its WebAssembly
 * reservation.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { HttpRequestError, httpRequest } from '../../src/protocol/http-request.js'
import { waitUntil } from '../harness/wait.js'

const servers: http.Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler)
  servers.push(s)
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

async function failure(p: Promise<unknown>): Promise<HttpRequestError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(HttpRequestError)
  return err as HttpRequestError
}

describe('httpRequest', () => {
  it('sends a request again once when the kept-alive connection it went out on was closed under it', async () => {
    const seen = new WeakMap<object, number>()
    let handled = 0
    const base = await serve((req, res) => {
      const n = (seen.get(req.socket) ?? 0) + 1
      seen.set(req.socket, n)
      // The second request on a connection meets it closing, as at the server's keep-alive timeout.
      if (n === 2) return req.socket.destroy()
      handled++
      res.end('fine')
    })
    expect((await httpRequest(`${base}/a`)).text).toBe('fine')
    expect((await httpRequest(`${base}/b`)).text).toBe('fine')
    expect(handled).toBe(2)
  })

  it('sends method, headers and body, and reads the whole answer of any status', async () => {
    const base = await serve((req, res) => {
      let body = ''
      req.on('data', (c) => {
        body += c
      })
      req.on('end', () => {
        res.statusCode = req.url === '/missing' ? 404 : 200
        res.end(JSON.stringify({ method: req.method, type: req.headers['content-type'], body }))
      })
    })
    const ok = await httpRequest(`${base}/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"ü":1}',
    })
    expect(ok.ok).toBe(true)
    expect(JSON.parse(ok.text)).toEqual({ method: 'POST', type: 'application/json', body: '{"ü":1}' })
    const missing = await httpRequest(`${base}/missing`)
    expect([missing.status, missing.ok, JSON.parse(missing.text).method]).toEqual([404, false, 'GET'])
  })

  it('names why no answer came: refused, timed out, aborted, cut off mid-body', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}/`
    const refused = await failure(httpRequest(nobody))
    expect([refused.code, refused.kind]).toEqual(['ECONNREFUSED', 'unavailable'])
    expect(refused.message).toBe(`${nobody}: ECONNREFUSED`)

    const hung = await serve(() => {})
    expect((await failure(httpRequest(hung, { signal: AbortSignal.timeout(100) }))).code).toBe('timed out')
    const stop = new AbortController()
    const asked = httpRequest(hung, { signal: stop.signal })
    setTimeout(() => stop.abort(), 50)
    expect((await failure(asked)).code).toBe('aborted')
    expect((await failure(httpRequest(hung, { signal: stop.signal }))).code).toBe('aborted')

    // Half the promised body, then the connection goes: an answer that never ends is not one.
    const cut = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('half')
      setTimeout(() => res.socket?.destroy(), 20)
    })
    expect((await failure(httpRequest(cut))).code).toBe('ECONNRESET')
  })

  // tsx's own loader instantiates WebAssembly, so the child cannot start under 2 GiB: it gets 1 GiB more
  // than it holds once loaded, room for anything but a Wasm memory's 10 GiB reservation.
  it.each([
    ['httpRequest', 'answered'],
    ['fetch', /Wasm memory/],
  ])('%s in a process whose address space may grow by 1 GiB', async (client, expected) => {
    const base = await serve((_req, res) => res.end('answered'))
    const module = fileURLToPath(new URL('../../src/protocol/http-request.ts', import.meta.url))
    const script = `
      const { httpRequest } = await import(${JSON.stringify(module)})
      const vsz = /VmSize:\\s+(\\d+)/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'))[1]
      console.log(vsz)
      process.stdin.once('data', async () => {
        const ask = ${client === 'fetch' ? 'async (url) => ({ text: await (await fetch(url)).text() })' : 'httpRequest'}
        try { console.log((await ask(process.argv[1])).text) } catch (e) { console.log(e.cause?.message ?? e.message) }
        process.exit(0)
      })`
    const child = execa('node', ['--import', 'tsx', '--input-type=module', '-e', script, base], {
      reject: false,
      timeout: 30_000,
      stdin: 'pipe',
    })
    try {
      const lines: string[] = []
      child.stdout.on('data', (c: Buffer) => lines.push(...c.toString().trim().split('\n')))
      await waitUntil('the child to load', () => lines.length > 0)
      const limitBytes = (Number(lines[0]) + 1024 * 1024) * 1024
      await execa('prlimit', ['--pid', String(child.pid), `--as=${limitBytes}`])
      child.stdin.write('go\n')
      const r = await child
      expect(r.stderr).toBe('')
      expect(lines[1]).toMatch(expected)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
