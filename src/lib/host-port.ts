/** Listen and connect addresses as config files write them: `host:port`, an IPv6 host in brackets. */
import { type ErrorKind, ZenithError } from './errors.js'

export interface HostPort {
  host: string
  port: number
}

export class HostPortError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'HostPortError'
}

/** `what` names the setting in the error ("listen_pg_addr"). */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(.+):(\d{1,5})$/.exec(text)
  const port = m ? Number(m[2]) : Number.NaN
  if (!m || port < 1 || port > 65535) {
    throw new HostPortError(`${what} "${text}" is not host:port with a port in 1..65535`)
  }
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port }
}

export const formatHostPort = (a: HostPort): string =>
  `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`
