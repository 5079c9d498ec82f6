/**
 * How records are shown: pg_waldump's line, a JSON object per record, and pg_waldump's --stats=record
 * table. Shared by `zenith wal dump` and anything else that prints WAL.
 */
import { formatLsn, formatLsnPadded } from './lsn.js'
import { RM_XACT_ID, recordTypeName, rmgrName, XLOG_XACT_OPMASK } from './rmgr.js'
import { type DecodedRecord, FORK_NAMES, MAIN_FORKNUM } from './xlog-record.js'

function forkName(forkNum: number): string {
  return FORK_NAMES[forkNum] ?? `fork${forkNum}`
}

/** pg_waldump's record line, without the rmgr-specific description after the record type. */
export function formatRecordLine(rec: DecodedRecord): string {
  let line =
    `rmgr: ${rmgrName(rec.rmid).padEnd(11)} len (rec/tot): ${String(rec.totLen - rec.fpiLen).padStart(6)}/` +
    `${String(rec.totLen).padStart(6)}, tx: ${String(rec.xid).padStart(10)}, lsn: ${formatLsnPadded(rec.lsn)}, ` +
    `prev ${formatLsnPadded(rec.prev)}, desc: ${recordTypeName(rec.rmid, rec.info)}`
  for (const b of rec.blocks) {
    const fork = b.forkNum === MAIN_FORKNUM ? '' : ` fork ${forkName(b.forkNum)}`
    line += `, blkref #${b.id}: rel ${b.spcNode}/${b.dbNode}/${b.relNode}${fork} blk ${b.blkno}`
    if (b.image) line += b.image.apply ? ' FPW' : ' FPW for WAL verification'
  }
  return line
}

export interface RecordJson {
  lsn: string
  prev: string
  rmgr: string
  type: string
  rec_len: number
  tot_len: number
  xid: number
  blocks: {
    id: number
    spc: number
    db: number
    rel: number
    fork: string
    blk: number
    image: boolean
    apply: boolean
  }[]
}

export function recordToJson(rec: DecodedRecord): RecordJson {
  return {
    lsn: formatLsn(rec.lsn),
    prev: formatLsn(rec.prev),
    rmgr: rmgrName(rec.rmid),
    type: recordTypeName(rec.rmid, rec.info),
    rec_len: rec.totLen - rec.fpiLen,
    tot_len: rec.totLen,
    xid: rec.xid,
    blocks: rec.blocks.map((b) => ({
      id: b.id,
      spc: b.spcNode,
      db: b.dbNode,
      rel: b.relNode,
      fork: forkName(b.forkNum),
      blk: b.blkno,
      image: b.image !== null,
      apply: b.image?.apply ?? false,
    })),
  }
}

export interface StatsRow {
  rmgr: string
  type: string
  count: number
  rec_bytes: number
  fpi_bytes: number
  combined_bytes: number
}

/** Counts and bytes per record type, as pg_waldump --stats=record. */
export class WalStats {
  private readonly rows = new Map<number, StatsRow>()
  count = 0
  recBytes = 0
  fpiBytes = 0

  add(rec: DecodedRecord): void {
    // Transaction records keep a flag in the top bit of the rmgr's nibble: the type is the other three.
    const key = rec.rmid * 256 + (rec.info & (rec.rmid === RM_XACT_ID ? XLOG_XACT_OPMASK : 0xf0))
    let row = this.rows.get(key)
    if (!row) {
      row = {
        rmgr: rmgrName(rec.rmid),
        type: recordTypeName(rec.rmid, rec.info),
        count: 0,
        rec_bytes: 0,
        fpi_bytes: 0,
        combined_bytes: 0,
      }
      this.rows.set(key, row)
    }
    const recLen = rec.totLen - rec.fpiLen
    row.count++
    row.rec_bytes += recLen
    row.fpi_bytes += rec.fpiLen
    row.combined_bytes += rec.totLen
    this.count++
    this.recBytes += recLen
    this.fpiBytes += rec.fpiLen
  }

  /** Rows in rmgr id order, then by info value, as pg_waldump lists them. */
  list(): StatsRow[] {
    return [...this.rows.entries()].sort((a, b) => a[0] - b[0]).map(([, row]) => row)
  }

  toJson() {
    return {
      records: this.count,
      rec_bytes: this.recBytes,
      fpi_bytes: this.fpiBytes,
      combined_bytes: this.recBytes + this.fpiBytes,
      types: this.list(),
    }
  }

  /** pg_waldump's table layout. */
  format(): string[] {
    const total = this.recBytes + this.fpiBytes
    const pct = (n: number, of: number) => (of === 0 ? 0 : (100 * n) / of).toFixed(2).padStart(6)
    const lines = [
      `${'Type'.padEnd(39)}${'N'.padStart(9)}      (%)${'Record size'.padStart(21)}      (%)` +
        `${'FPI size'.padStart(21)}      (%)${'Combined size'.padStart(21)}      (%)`,
      `${'----'.padEnd(39)}${'-'.padStart(9)}      ---${'-----------'.padStart(21)}      ---` +
        `${'--------'.padStart(21)}      ---${'-------------'.padStart(21)}      ---`,
    ]
    for (const r of this.list()) {
      lines.push(
        `${`${r.rmgr}/${r.type}`.padEnd(38)} ${String(r.count).padStart(9)} (${pct(r.count, this.count)})` +
          ` ${String(r.rec_bytes).padStart(20)} (${pct(r.rec_bytes, this.recBytes)})` +
          ` ${String(r.fpi_bytes).padStart(20)} (${pct(r.fpi_bytes, this.fpiBytes)})` +
          ` ${String(r.combined_bytes).padStart(20)} (${pct(r.combined_bytes, total)})`,
      )
    }
    lines.push(
      `${''.padEnd(40)}${'--------'.padStart(8)}${'--------'.padStart(30)}${'--------'.padStart(30)}${'--------'.padStart(30)}`,
    )
    const share = (n: number) => `[${pct(n, total).trim()}%]`.padEnd(9)
    lines.push(
      `${'Total'.padEnd(38)} ${String(this.count).padStart(9)} ${''.padEnd(9)}` +
        `${String(this.recBytes).padStart(20)} ${share(this.recBytes)}` +
        `${String(this.fpiBytes).padStart(20)} ${share(this.fpiBytes)}` +
        `${String(total).padStart(20)} [100%]`,
    )
    return lines
  }
}
