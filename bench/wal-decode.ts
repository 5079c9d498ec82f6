/**
 * Decoding speed on real, image-heavy WAL (pgbench under wal_consistency_checking=all).
 *
 * Figures, all from this run on the same files:
 *   read_mb_s         plain sequential read of the segment files (the baseline)
 *   decode_mb_s       zenith's directory reader: read + decode + CRC, records handed to a consumer
 *   decode_vs_read    decode_mb_s / read_mb_s
 *   decode_cpu_mb_s   decoding + CRC from memory on the main thread alone (one core)
 *   records_per_s     records per second at decode_mb_s
 *   crc_native_mb_s / crc_slice8_mb_s / crc_native_vs_slice8: CRC-32C alone, native vs TypeScript
 * The WAL is generated once into bench/.data (about 300 MB) and reused.
 */
import { existsSync } from 'node:fs'
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { crc32c } from '../src/postgres/crc32c.js'
import { formatLsn, parseLsn } from '../src/postgres/lsn.js'
import { WalDecoder, type WalDecoderOptions } from '../src/postgres/wal-decoder.js'
import { openWalDir } from '../src/postgres/wal-dir.js'
import { startPostgres } from '../test/harness/postgres.js'
import { crc32cSlice8 } from './crc32c-slice8.js'

// npm runs benchmarks from the package root, from sources or from the compiled build alike.
const DATA = path.resolve('bench', '.data', 'wal-decode')
const TARGET_BYTES = 288 * 1024 * 1024
const RUNS = 3

interface Generated {
  start: string
  end: string
}

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

async function generate(): Promise<Generated> {
  const metaFile = path.join(DATA, 'meta.json')
  if (existsSync(metaFile)) return JSON.parse(await readFile(metaFile, 'utf8'))
  log(`generating ≥ ${TARGET_BYTES >> 20} MiB of WAL with pgbench and wal_consistency_checking=all ...`)
  const pg = await startPostgres({
    name: 'bench-wal',
    settings: { wal_consistency_checking: 'all', wal_keep_size: '2GB', max_wal_size: '4GB' },
  })
  try {
    await pg.run('pgbench', ['-i', '-q', '-s', '10', 'postgres'])
    const insertLsn = async () =>
      (await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn'))[0].lsn
    const start = await insertLsn()
    for (;;) {
      await pg.run('pgbench', ['-n', '-c', '4', '-j', '2', '-T', '5', 'postgres'])
      const [{ done }] = await pg.query<{ done: string }>(
        'SELECT pg_current_wal_insert_lsn() - $1::pg_lsn AS done',
        [start],
      )
      if (Number(done) >= TARGET_BYTES) break
    }
    const end = await insertLsn()
    await pg.stop()
    await rm(DATA, { recursive: true, force: true })
    await mkdir(DATA, { recursive: true })
    await cp(pg.walDir, path.join(DATA, 'pg_wal'), { recursive: true })
    const meta = { start, end }
    await writeFile(metaFile, JSON.stringify(meta))
    return meta
  } finally {
    await pg.destroy()
  }
}

/**
 * Decoding alone: WAL already in memory, fed chunk by chunk to one decoder on this thread, every record
 * pulled out and dropped. Returns the records decoded.
 */
export function decodeInMemory(chunks: Iterable<Buffer>, opts: WalDecoderOptions): number {
  const d = new WalDecoder(opts)
  let records = 0
  for (const c of chunks) {
    d.feed(c)
    while (d.next()) records++
  }
  return records
}

function best(values: number[]): number {
  return Math.max(...values)
}

export async function walDecodeBench(): Promise<Record<string, number | string>> {
  const { start, end } = await generate()
  const dir = path.join(DATA, 'pg_wal')
  const startLsn = parseLsn(start)
  const endLsn = parseLsn(end)
  const walBytes = endLsn - startLsn
  const segSize = 16 * 1024 * 1024
  const files = (await readdir(dir))
    .filter((f) => /^[0-9A-F]{24}$/.test(f))
    .sort()
    .filter((f) => {
      const seg = Number.parseInt(f.slice(8, 16), 16) * 256 + Number.parseInt(f.slice(16), 16)
      return seg >= Math.floor(startLsn / segSize) && seg <= Math.floor((endLsn - 1) / segSize)
    })
  const fileBytes = files.length * segSize
  log(`WAL ${start} .. ${end}: ${(walBytes / 1e6).toFixed(0)} MB in ${files.length} segments`)

  const read: number[] = []
  const decode: number[] = []
  const records: number[] = []
  for (let run = 0; run < RUNS; run++) {
    let t = performance.now()
    let n = 0
    for (const f of files) n += (await readFile(path.join(dir, f))).length
    read.push(n / 1e6 / ((performance.now() - t) / 1000))

    t = performance.now()
    const { reader } = await openWalDir(dir, { start: startLsn, end: endLsn })
    let count = 0
    for await (const _ of reader.records()) count++
    const secs = (performance.now() - t) / 1000
    decode.push(walBytes / 1e6 / secs)
    records.push(count / secs)
    log(
      `run ${run + 1}: read ${read[run].toFixed(0)} MB/s, decode ${decode[run].toFixed(0)} MB/s, ${count} records`,
    )
  }

  // Decoding alone: the segments already in memory, one thread.
  const segs = await Promise.all(files.map((f) => readFile(path.join(dir, f))))
  const cpu: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const from = startLsn - (startLsn % 8192)
    const chunks: Buffer[] = []
    let pos = from
    for (const s of segs) {
      const segStart = pos - (pos % segSize)
      const chunk = s.subarray(pos - segStart, Math.min(segSize, endLsn - segStart))
      chunks.push(chunk)
      pos += chunk.length
    }
    const t = performance.now()
    decodeInMemory(chunks, { startLsn: from, segmentSize: segSize })
    cpu.push(walBytes / 1e6 / ((performance.now() - t) / 1000))
  }

  const sample = Buffer.concat(segs.slice(0, 4))
  const pages = Array.from({ length: sample.length / 8192 }, (_, i) =>
    sample.subarray(i * 8192, (i + 1) * 8192),
  )
  const crcSpeed = (fn: (b: Uint8Array) => number) => {
    const t = performance.now()
    for (const p of pages) fn(p)
    return sample.length / 1e6 / ((performance.now() - t) / 1000)
  }
  const native = best([0, 1, 2].map(() => crcSpeed(crc32c)))
  const slice8 = best([0, 1, 2].map(() => crcSpeed(crc32cSlice8)))
  if (crc32cSlice8(pages[3]) !== crc32c(pages[3]))
    throw new Error('slicing-by-8 CRC disagrees with the native one')

  const decodeBest = best(decode)
  const readBest = best(read)
  return {
    wal_bytes: walBytes,
    file_bytes: fileBytes,
    start: formatLsn(startLsn),
    end: formatLsn(endLsn),
    read_mb_s: Math.round(readBest),
    decode_mb_s: Math.round(decodeBest),
    decode_vs_read: Number((decodeBest / readBest).toFixed(3)),
    decode_cpu_mb_s: Math.round(best(cpu)),
    records_per_s: Math.round(best(records)),
    crc_native_mb_s: Math.round(native),
    crc_slice8_mb_s: Math.round(slice8),
    crc_native_vs_slice8: Number((native / slice8).toFixed(2)),
  }
}
