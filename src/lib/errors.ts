/**
 * zenith's one error type. Every failure that zenith expects (bad input, a missing tenant, a busy port, a
 * Postgres that would not start) is a ZenithError with a kind; the kind alone decides how each surface
 * reports it, in one place per surface: the CLI (src/cli/errors.ts), the HTTP APIs
 * (src/protocol/http-router.ts) and the libpq servers (src/protocol/command-server.ts). Anything thrown
 * that is not a ZenithError is a bug, whatever its class, and every surface says so.
 *
 * Modules keep their own subclasses (LsnError, LayerCorruptionError, …) so callers can still catch the
 * precise failure; a subclass fixes its kind once, in its declaration.
 */

export const ERROR_KINDS = [
  /** The request or its arguments are wrong; the same request will fail again. */
  'user_input',
  /** What was named does not exist. */
  'not_found',
  /** It exists, but its state forbids the request (already exists, has children, is running). */
  'conflict',
  /** Waiting for something (an LSN, a process) took longer than allowed. */
  'timeout',
  /** A process zenith needs is not there or not answering; trying again later may work. */
  'unavailable',
  /** A program or server zenith called failed (initdb, pg_ctl, a compute, the pageserver's answer). */
  'external',
  /** Stored data failed a check: a checksum, a magic number, a length. */
  'corruption',
  /** zenith itself is wrong. */
  'bug',
] as const

export type ErrorKind = (typeof ERROR_KINDS)[number]

export interface ZenithErrorOptions {
  /** Overrides the kind the class declares, for a throw site that knows better. */
  kind?: ErrorKind
  /** What the user can do about it, one sentence. */
  hint?: string
  /** The log file that tells more, when there is one. */
  logFile?: string
  cause?: unknown
}

export class ZenithError extends Error {
  /** The kind of every error of this class unless a throw site names another; subclasses set it. */
  static kind: ErrorKind = 'bug'
  override name = 'ZenithError'
  readonly kind: ErrorKind
  readonly hint?: string
  readonly logFile?: string

  constructor(message: string, opts: ZenithErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.kind = opts.kind ?? (new.target as typeof ZenithError).kind
    if (opts.hint !== undefined) this.hint = opts.hint
    if (opts.logFile !== undefined) this.logFile = opts.logFile
  }
}

/** Any thrown value as a ZenithError: itself, or a bug that keeps the original as its cause. */
export function asZenithError(err: unknown): ZenithError {
  if (err instanceof ZenithError) return err
  const message = err instanceof Error ? err.message : String(err)
  const bug = new ZenithError(message, { kind: 'bug', cause: err })
  if (err instanceof Error && err.stack) bug.stack = err.stack
  return bug
}

/** The JSON form of an error, as the CLI prints it under --json. */
export function errorJson(err: ZenithError): {
  error: { kind: ErrorKind; message: string; hint?: string; log_file?: string }
} {
  return {
    error: {
      kind: err.kind,
      message: err.message,
      ...(err.hint !== undefined ? { hint: err.hint } : {}),
      ...(err.logFile !== undefined ? { log_file: err.logFile } : {}),
    },
  }
}
