/**
 * Listening sockets of zenith's servers: a busy port becomes a one-line error naming it, and closing
 * ends the open connections too (idle keep-alive HTTP clients and libpq sessions would otherwise keep
 * the process alive).
 */

import type { Server, Socket } from 'node:net'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import type { HostPort } from '../lib/host-port.js'

export class ListenError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'ListenError'
}

export interface Listener {
  readonly port: number
  close(): Promise<void>
}

export function listen(server: Server, addr: HostPort, what: string): Promise<Listener> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'is already in use'
          : err.code === 'EACCES'
            ? 'needs privileges to bind'
            : `cannot be bound (${err.message})`
      reject(new ListenError(`${what}: port ${addr.port} on ${addr.host} ${why}`))
    }
    server.once('error', onError)
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError)
      const bound = server.address()
      resolve({
        port: typeof bound === 'object' && bound ? bound.port : addr.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            for (const s of sockets) s.destroy()
          }),
      })
    })
  })
}
