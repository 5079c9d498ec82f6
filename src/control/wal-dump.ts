/**
 * `zenith wal dump`: decode a directory of WAL segments and print each record, or statistics.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatLsn, type Lsn } from '../postgres/lsn.js'
import { openWalDir, type WalDir, walContinuesAfter } from '../postgres/wal-dir.js'
import type { WalStop } from '../postgres/wal-reader.js'
import { formatRecordLine, recordToJson, WalStats } from '../postgres/waldump-format.js'
import type { LineWriter } from './line-writer.js'

export interface WalDumpOptions {
  path: string
  start?: Lsn
  end?: Lsn
  timeline?: number
  json?: boolean
  stats?: boolean
}

export interface WalDumpResult {
  wal: WalDir
  records: number
  stop: WalStop
  /** One line saying where and why reading stopped, for stderr. */
  summary: string
  stats?: WalStats
}

/** The WAL could not be read as far as it should have been: damage, or a requested end beyond it. */
export class WalDumpError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'WalDumpError'
}

export async function dumpWal(opts: WalDumpOptions, out: LineWriter): Promise<WalDumpResult> {
  const { wal, reader } = await openWalDir(opts.path, {
    start: opts.start,
    end: opts.end,
    timeline: opts.timeline,
  })
  const stats = opts.stats ? new WalStats() : undefined
  let records = 0
  for await (const rec of reader.records()) {
    records++
    if (stats) stats.add(rec)
    else if (opts.json) await out.line(JSON.stringify(recordToJson(rec)))
    else await out.line(formatRecordLine(rec))
    if (!out.open) break
  }
  const stop = reader.stop ?? {
    kind: 'end-of-input' as const,
    lsn: 0,
    reason: 'output closed',
    lastRecordLsn: undefined,
  }
  if (stats) {
    if (opts.json) await out.line(JSON.stringify(stats.toJson()))
    else for (const line of stats.format()) await out.line(line)
  }
  await out.flush()

  const last =
    stop.lastRecordLsn === undefined ? 'no record read' : `last record at ${formatLsn(stop.lastRecordLsn)}`
  if (opts.end !== undefined && stop.kind !== 'end-reached' && out.open) {
    throw new WalDumpError(`WAL stops before --end ${formatLsn(opts.end)}: ${stop.reason} (${last})`)
  }
  if (stop.kind === 'invalid' && (await walContinuesAfter(wal, stop.lsn))) {
    throw new WalDumpError(
      `damaged WAL at ${formatLsn(stop.lsn)}: ${stop.reason}; valid WAL follows in later segments (${last})`,
    )
  }
  const summary =
    stop.kind === 'end-reached'
      ? `${records} records up to ${formatLsn(stop.lsn)}`
      : `${records} records; end of WAL at ${formatLsn(stop.lsn)}: ${stop.reason} (${last})`
  return { wal, records, stop, summary, stats }
}
