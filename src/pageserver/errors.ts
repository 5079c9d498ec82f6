/** Errors of the pageserver's own, which its API answers as bad requests. */

/** A request that cannot be carried out as asked (the HTTP API answers 400). */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError'
}
