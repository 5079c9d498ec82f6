/**
 * Errors of the wire protocol layer. Four kinds, because callers react differently: a ProtocolError means
 * the peer broke the framing or a message layout (the connection is unusable), a PgClientError is a local
 * failure to reach or talk to a server (refused, timed out, unsupported authentication), a PgServerError
 * is an ErrorResponse the server sent on purpose (the connection usually stays usable), and a
 * ReplicationCommandError is a command our walsender refuses, answered with an ErrorResponse of its SQLSTATE
 * while the connection stays usable.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

export class ProtocolError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'ProtocolError'
}

export class PgClientError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'PgClientError'
}

/** The fields of an ErrorResponse or NoticeResponse, keyed by their one-letter field codes (S, V, C, M, …). */
export type ErrorFields = Record<string, string>

export class PgServerError extends ZenithError {
  static override kind: ErrorKind = 'external'
  override name = 'PgServerError'
  /** SQLSTATE, e.g. 28P01 for a wrong password. */
  readonly code: string
  /** Non-localized severity (V) when the server sent it, else the localized one (S). */
  readonly severity: string
  readonly detail?: string
  /** Every field as received, for the rarely needed ones (position, where, schema, …). */
  readonly fields: ErrorFields

  constructor(fields: ErrorFields) {
    super(
      fields.M ?? 'server sent an ErrorResponse without a message',
      fields.H === undefined ? {} : { hint: fields.H },
    )
    this.fields = fields
    this.code = fields.C ?? 'XX000'
    this.severity = fields.V ?? fields.S ?? 'ERROR'
    if (fields.D !== undefined) this.detail = fields.D
  }
}

/** A replication command we refuse: wrong syntax, SQL, or a command this walsender does not implement. */
export class ReplicationCommandError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'ReplicationCommandError'

  constructor(
    message: string,
    /** The SQLSTATE Postgres' walsender answers the same command with. */
    readonly code: string,
    opts: { hint?: string } = {},
  ) {
    super(message, opts)
  }
}
