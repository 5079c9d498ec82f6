/**
 * Reads records from an async source of WAL bytes (segment files, a replication stream) and reports
 * why it stopped, as pg_waldump does: at the requested end, at the end of the input, or at the first
 * invalid byte (which is how the end of valid WAL is found).
 */
import { formatLsn, type Lsn } from './lsn.js'
import { WalDecodeError, WalDecoder, type WalDecoderOptions } from './wal-decoder.js'
import type { DecodedRecord } from './xlog-record.js'

export type WalStopKind = 'end-reached' | 'end-of-input' | 'invalid'

export interface WalStop {
  kind: WalStopKind
  /** For 'invalid': where the invalid data is; otherwise where the input ended. */
  lsn: Lsn
  reason: string
  lastRecordLsn: Lsn | undefined
}

export interface WalReaderOptions extends WalDecoderOptions {
  /** Records are returned only if all their bytes lie before this LSN (pg_waldump's --end). */
  endLsn?: Lsn
  /** Records starting before this LSN are decoded (to find record boundaries) but not returned. */
  firstLsn?: Lsn
  /** Names the input for end-of-input messages, e.g. "segment 000000010000000000000003 is missing". */
  describeEndOfInput?: (lsn: Lsn) => string
}

/** A source yields chunks of contiguous WAL bytes beginning at the decoder's start LSN. */
export type WalSource = AsyncIterable<Buffer>

export class WalReader {
  private readonly decoder: WalDecoder
  private stopInfo: WalStop | null = null

  constructor(
    private readonly source: WalSource,
    private readonly opts: WalReaderOptions,
  ) {
    this.decoder = new WalDecoder(opts)
  }

  get segmentSize(): number {
    return this.decoder.segmentSize
  }

  /** Why reading stopped; set once records() has finished. */
  get stop(): WalStop | null {
    return this.stopInfo
  }

  async *records(): AsyncGenerator<DecodedRecord> {
    const end = this.opts.endLsn ?? Number.POSITIVE_INFINITY
    const first = this.opts.firstLsn ?? 0
    const d = this.decoder
    try {
      for await (const chunk of this.source) {
        const room = end - d.inputEnd
        if (room <= 0) break
        d.feed(chunk.length > room ? chunk.subarray(0, room) : chunk)
        for (let rec = d.next(); rec !== null; rec = d.next()) {
          if (rec.lsn >= first) yield rec
        }
      }
      if (d.inputEnd >= end) {
        this.stopInfo = {
          kind: 'end-reached',
          lsn: end,
          reason: `reached end ${formatLsn(end)}`,
          lastRecordLsn: d.lastRecord,
        }
      } else {
        const at = d.inputEnd
        this.stopInfo = {
          kind: 'end-of-input',
          lsn: at,
          reason: this.opts.describeEndOfInput?.(at) ?? `input ended at ${formatLsn(at)}`,
          lastRecordLsn: d.lastRecord,
        }
      }
    } catch (err) {
      if (!(err instanceof WalDecodeError)) throw err
      this.stopInfo = { kind: 'invalid', lsn: err.lsn, reason: err.reason, lastRecordLsn: d.lastRecord }
    }
  }
}
