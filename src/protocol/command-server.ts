/**
 * A libpq server that runs one command per simple Query, as the pageserver's page service and a
 * safekeeper's walsender are: startup with trust authentication, then each Query handed to `run`, and
 * every failure answered with an ErrorResponse whose SQLSTATE follows the error's kind — the one place
 * the libpq surface decides it. The session goes on after an error; a bug is also reported to `onBug`.
 * The extended protocol is answered with one error up to its Sync.
 */
import net from 'node:net'
import { asZenithError, type ErrorKind, type ZenithError } from '../lib/errors.js'
import { ReplicationCommandError } from './errors.js'
import { PgServerConnection, type StartupParams } from './server.js'

/** How each kind of failure is told to a libpq client: the SQLSTATE closest to its meaning. */
const SQLSTATE: Record<ErrorKind, string> = {
  user_input: '22023', // invalid_parameter_value
  not_found: '42704', // undefined_object
  conflict: '55000', // object_not_in_prerequisite_state
  timeout: '57014', // query_canceled
  unavailable: '57P03', // cannot_connect_now
  external: '58000', // system_error
  corruption: 'XX001', // data_corrupted
  bug: 'XX000', // internal_error
}
const SQLSTATE_FEATURE_NOT_SUPPORTED = '0A000'

/** The ErrorResponse a failed command is answered with; anything not a ZenithError says it is a bug. */
export function errorResponse(err: unknown): { message: string; code: string; hint?: string } {
  const e = asZenithError(err)
  return {
    message: e.kind === 'bug' ? `this is a bug in zenith: ${e.message}` : e.message,
    // A replication command is refused with the code Postgres' walsender uses, which clients know.
    code: e instanceof ReplicationCommandError ? e.code : SQLSTATE[e.kind],
    ...(e.hint === undefined ? {} : { hint: e.hint }),
  }
}

export interface CommandServerOptions {
  /** What the server is called in errors ("the zenith page service"). */
  name: string
  /** Runs one command; the connection is in idle state before and must be again after (or closed). */
  run: (conn: PgServerConnection, sql: string, params: StartupParams) => Promise<void>
  onBug: (err: ZenithError) => void
  /** A connection that failed outside any command (a broken startup packet, a reset socket). */
  onConnectionError: (err: Error) => void
}

export function createCommandServer(opts: CommandServerOptions): net.Server {
  return net.createServer((socket) => {
    serveConnection(socket, opts).catch((err: Error) => {
      opts.onConnectionError(err)
      socket.destroy()
    })
  })
}

async function serveConnection(socket: net.Socket, opts: CommandServerOptions): Promise<void> {
  const conn = new PgServerConnection(socket)
  const params = await conn.startup()
  if (!params) return
  let skipToSync = false
  for (;;) {
    const msg = await conn.next()
    if (!msg || msg.type === 'terminate') break
    if (msg.type === 'sync') {
      skipToSync = false
      conn.readyForQuery()
      continue
    }
    if (skipToSync) continue
    if (msg.type !== 'query') {
      // The extended protocol's messages run until Sync; one error answers them all.
      conn.error({
        message: `${opts.name} speaks the simple query protocol only`,
        code: SQLSTATE_FEATURE_NOT_SUPPORTED,
      })
      skipToSync = true
      continue
    }
    try {
      await opts.run(conn, msg.sql, params)
    } catch (err) {
      const e = asZenithError(err)
      if (e.kind === 'bug') opts.onBug(e)
      if (conn.closed) break
      conn.error(errorResponse(e))
    }
    if (conn.closed) break
    conn.readyForQuery()
  }
  conn.close()
}
