/** Errors the engine reports to its callers; each names what was asked and why it cannot be done. */
import { formatLsn } from '../postgres/lsn.js'

export class GcCutoffError extends Error {
  override name = 'GcCutoffError'
  constructor(timelineId: string, lsn: number, cutoff: number, what = 'read') {
    super(
      `${what} at ${formatLsn(lsn)} refused: timeline ${timelineId} has garbage-collected history below ${formatLsn(cutoff)}`,
    )
  }
}

export class LsnTimeoutError extends Error {
  override name = 'LsnTimeoutError'
  constructor(timelineId: string, lsn: number, last: number, ms: number) {
    super(
      `timed out after ${ms} ms waiting for timeline ${timelineId} to reach ${formatLsn(lsn)}; it is at ${formatLsn(last)}`,
    )
  }
}

export class ReconstructError extends Error {
  override name = 'ReconstructError'
}

export class EngineStateError extends Error {
  override name = 'EngineStateError'
}

export class NotFoundError extends Error {
  override name = 'NotFoundError'
}

/** An LSN outside what a timeline can serve: beyond what it has received, or before it starts. */
export class LsnRangeError extends Error {
  override name = 'LsnRangeError'
}
