/** Runs the real pg_waldump and parses its output, the reference our decoder is compared with. */
import { execa } from 'execa'
import { formatLsn } from '../../src/postgres/lsn.js'
import { recordTypeName, rmgrName } from '../../src/postgres/rmgr.js'
import { type DecodedRecord, FORK_NAMES } from '../../src/postgres/xlog-record.js'
import { pgBin } from './postgres.js'

export interface WaldumpBlock {
  id: number
  spc: number
  db: number
  rel: number
  fork: string
  blk: number
  image: boolean
  apply: boolean
  holeOffset?: number
  holeLength?: number
  method?: string
}

export interface WaldumpRecord {
  rmgr: string
  recLen: number
  totLen: number
  xid: number
  lsn: string
  prev: string
  type: string
  blocks: WaldumpBlock[]
}

const RECORD =
  /^rmgr: (\S+)\s+len \(rec\/tot\):\s+(\d+)\/\s*(\d+), tx:\s+(\d+), lsn: ([0-9A-F]+)\/([0-9A-F]+), prev ([0-9A-F]+)\/([0-9A-F]+), desc: (UNKNOWN \([0-9a-f]+\)|\S+)/
const BLOCK =
  /^\tblkref #(\d+): rel (\d+)\/(\d+)\/(\d+) fork (\w+) blk (\d+)(?: \((FPW|FPW for WAL verification)\); hole: offset: (\d+), length: (\d+)(?:, compression saved: \d+, method: (\w+))?)?$/

/** pg_waldump prints the low half zero-padded; our JSON and tests use Postgres' unpadded X/X form. */
function lsnText(hi: string, lo: string): string {
  return `${Number.parseInt(hi, 16).toString(16).toUpperCase()}/${Number.parseInt(lo, 16).toString(16).toUpperCase()}`
}

export function parseWaldump(output: string): WaldumpRecord[] {
  const out: WaldumpRecord[] = []
  for (const line of output.split('\n')) {
    if (line === '') continue
    const m = RECORD.exec(line)
    if (m) {
      out.push({
        rmgr: m[1],
        recLen: Number(m[2]),
        totLen: Number(m[3]),
        xid: Number(m[4]),
        lsn: lsnText(m[5], m[6]),
        prev: lsnText(m[7], m[8]),
        type: m[9],
        blocks: [],
      })
      continue
    }
    const b = BLOCK.exec(line)
    if (!b || out.length === 0) throw new Error(`unexpected pg_waldump line: ${line}`)
    out[out.length - 1].blocks.push({
      id: Number(b[1]),
      spc: Number(b[2]),
      db: Number(b[3]),
      rel: Number(b[4]),
      fork: b[5],
      blk: Number(b[6]),
      image: b[7] !== undefined,
      apply: b[7] === 'FPW',
      ...(b[7] !== undefined
        ? { holeOffset: Number(b[8]), holeLength: Number(b[9]), method: b[10] ?? 'none' }
        : {}),
    })
  }
  return out
}

/** pg_waldump -p dir -s start [-e end] --bkp-details; its final "error in WAL record" line is expected. */
export async function runWaldump(walDir: string, start: string, end?: string): Promise<WaldumpRecord[]> {
  const args = ['-p', walDir, '-s', start, '--bkp-details', ...(end ? ['-e', end] : [])]
  const res = await execa(pgBin('pg_waldump'), args, { reject: false, maxBuffer: 1024 * 1024 * 1024 })
  if (res.exitCode !== 0 && !/error in WAL record at/.test(res.stderr)) {
    throw new Error(`pg_waldump failed: ${res.stderr}`)
  }
  return parseWaldump(res.stdout)
}

/** Our decoded record in the shape parseWaldump produces, for comparisons. */
export function asWaldumpRecord(rec: DecodedRecord): WaldumpRecord {
  return {
    rmgr: rmgrName(rec.rmid),
    recLen: rec.totLen - rec.fpiLen,
    totLen: rec.totLen,
    xid: rec.xid,
    lsn: formatLsn(rec.lsn),
    prev: formatLsn(rec.prev),
    type: recordTypeName(rec.rmid, rec.info),
    blocks: rec.blocks.map((b) => ({
      id: b.id,
      spc: b.spcNode,
      db: b.dbNode,
      rel: b.relNode,
      fork: FORK_NAMES[b.forkNum],
      blk: b.blkno,
      image: b.image !== null,
      apply: b.image?.apply ?? false,
      ...(b.image
        ? { holeOffset: b.image.holeOffset, holeLength: b.image.holeLength, method: b.image.compression }
        : {}),
    })),
  }
}
