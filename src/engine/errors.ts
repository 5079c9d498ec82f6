/** Errors the engine reports to its callers; each names what was asked and why it cannot be done. */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn } from '../postgres/lsn.js'
import type { HistoricLayer } from './layer-map.js'

export class GcCutoffError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'GcCutoffError'
  /** `where` names the history: "timeline <id>", or "branch <name>" where the user knows it by name. */
  constructor(where: string, lsn: number, cutoff: number, what = 'read') {
    super(
      `${what} at ${formatLsn(lsn)} refused: ${where} has garbage-collected history below ${formatLsn(cutoff)}`,
    )
  }
}

export class LsnTimeoutError extends ZenithError {
  static override kind: ErrorKind = 'timeout'
  override name = 'LsnTimeoutError'
  constructor(timelineId: string, lsn: number, last: number, ms: number) {
    super(
      `timed out after ${ms} ms waiting for timeline ${timelineId} to reach ${formatLsn(lsn)}; it is at ${formatLsn(last)}`,
    )
  }
}

export class ReconstructError extends ZenithError {
  static override kind: ErrorKind = 'corruption'
  override name = 'ReconstructError'
}

export class EngineStateError extends ZenithError {
  static override kind: ErrorKind = 'conflict'
  override name = 'EngineStateError'
}

export class NotFoundError extends ZenithError {
  static override kind: ErrorKind = 'not_found'
  override name = 'NotFoundError'
}

/** An LSN outside what a timeline can serve: beyond what it has received, or before it starts. */
export class LsnRangeError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'LsnRangeError'
}

/**
 * A read needs a layer whose file is only in remote storage: withLocalLayers catches it, downloads the
 * layer and runs the read again. Seen elsewhere, the caller did not wrap its read.
 */
export class LayerNotLocalError extends ZenithError {
  static override kind: ErrorKind = 'unavailable'
  override name = 'LayerNotLocalError'
  constructor(readonly layer: HistoricLayer) {
    super(`layer ${layer.path} is not on local disk: it must be downloaded from remote storage first`, {
      hint: 'reads that may touch remote-only layers run inside withLocalLayers',
    })
  }
}
