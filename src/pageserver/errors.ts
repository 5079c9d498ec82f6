/** Errors of the pageserver's own, which its API answers as bad requests. */
import { type ErrorKind, ZenithError } from '../lib/errors.js'

/** A request that cannot be carried out as asked (the HTTP API answers 400). */
export class InvalidRequestError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'InvalidRequestError'
}
