/**
 * Transaction and multixact ids (access/transam.h, access/multixact.h): 32-bit counters that wrap, so
 * "older" is decided modulo 2^32 — a is older than b when b − a, as a signed 32-bit number, is positive.
 * Ids 0..2 are special (invalid, bootstrap, frozen) and compare as plain numbers, as Postgres does.
 */

export const InvalidTransactionId = 0
export const FrozenTransactionId = 2
export const FirstNormalTransactionId = 3
export const FirstMultiXactId = 1
export const MaxMultiXactId = 0xffffffff

export function transactionIdIsNormal(xid: number): boolean {
  return xid >= FirstNormalTransactionId
}

/** TransactionIdPrecedes: is `a` logically older than `b`. */
export function transactionIdPrecedes(a: number, b: number): boolean {
  if (!transactionIdIsNormal(a) || !transactionIdIsNormal(b)) return a < b
  return ((a - b) | 0) < 0
}

/** MultiXactIdPrecedes: multixact ids wrap past 0 with no special values to respect. */
export function multiXactIdPrecedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0
}

/** PreviousMultiXactId: the id before `multi`, skipping 0 (InvalidMultiXactId) when wrapping. */
export function previousMultiXactId(multi: number): number {
  return multi === FirstMultiXactId ? MaxMultiXactId : multi - 1
}
