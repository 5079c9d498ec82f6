/**
 * The LSN a read runs at. Every read "as of an LSN" — a GetPage, a basebackup, a branch point, a
 * read-only endpoint — is decided here from what the timeline has: its last_record_lsn, how far past it
 * nothing can be committed (its writer says: for WAL, up to where the next record could end), where its
 * history starts and where GC has cut it. A read either runs now at an LSN it may read, or must first
 * wait for an LSN not yet received; everything else is refused with the reason.
 */
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { GcCutoffError, LsnRangeError } from './errors.js'

/** What a timeline holds, as far as deciding a read's LSN goes. */
export interface ReadBounds {
  lastRecordLsn: Lsn
  /** The newest LSN that holds the data of last_record_lsn, whatever is committed next (≥ it). */
  quietUntil: Lsn
  /** The first LSN of the timeline's history: its branch point, or where its import starts. */
  startLsn: Lsn
  /** History below it is gone. */
  gcCutoffLsn: Lsn
}

export interface ReadLsnRequest {
  /** The LSN the read is as of; none: the latest. */
  lsn?: Lsn
  /**
   * The newest change the reader must see (Neon's not_modified_since), when it knows one newer than
   * what has arrived may still be on the way; by default the asked LSN itself.
   */
  needed?: Lsn
  /** Whether an LSN not yet received is waited for; otherwise it is refused as beyond the end. */
  wait?: boolean
  /** For messages: what is read ("read", "branch point") and where ("timeline …", "branch main"). */
  what?: string
  where?: string
}

/** Either the LSN to read at now, or the LSN to wait for before deciding again. */
export type ReadLsn = { lsn: Lsn; waitFor?: undefined } | { lsn?: undefined; waitFor: Lsn }

/** Without `wait`, the answer is always an LSN to read at now. */
export function resolveReadLsn(b: ReadBounds, req: ReadLsnRequest & { wait?: false }): { lsn: Lsn }
export function resolveReadLsn(b: ReadBounds, req: ReadLsnRequest): ReadLsn
export function resolveReadLsn(b: ReadBounds, req: ReadLsnRequest): ReadLsn {
  const what = req.what ?? 'read'
  const where = req.where ?? 'the timeline'
  const asked = req.lsn
  if (asked !== undefined) {
    if (!Number.isSafeInteger(asked) || asked < 0) throw new LsnRangeError(`${what} ${asked} is not an LSN`)
    if (asked < b.startLsn) {
      throw new LsnRangeError(
        `${what} ${formatLsn(asked)} is before the start of ${where} (${formatLsn(b.startLsn)})`,
      )
    }
    if (asked < b.gcCutoffLsn) throw new GcCutoffError(where, asked, b.gcCutoffLsn, what)
    if (asked <= b.lastRecordLsn) return { lsn: asked }
  }
  const needed = req.needed ?? asked
  if (needed === undefined || needed <= b.quietUntil) return { lsn: b.lastRecordLsn }
  if (req.wait) return { waitFor: needed }
  throw new LsnRangeError(
    `${what} ${formatLsn(needed)} is beyond the end of ${where} (last_record_lsn ${formatLsn(b.lastRecordLsn)})`,
  )
}
