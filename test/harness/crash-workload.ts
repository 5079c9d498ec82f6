/**
 * A deterministic write history for crash tests: write n (at LSN lsnOf(n)) goes to key keyOf(n) and
 * is an image or an APPEND record derived from n alone. Whoever knows an LSN can compute what every key
 * held there, without talking to the process that wrote it. A crash child runs it with ingestForever and
 * prints how far it got with reportChanges.
 */
import { encodeKey } from '../../src/engine/key.js'
import type { Timeline } from '../../src/engine/timeline.js'
import type { Value } from '../../src/engine/value.js'
import { APPEND } from './engine.js'

export const KEYS = 500
export const FIRST_LSN = 0x10000

export function lsnOf(n: number): number {
  return FIRST_LSN + 8 * (n + 1)
}

export function writesUpTo(lsn: number): number {
  return Math.max(0, Math.floor((lsn - FIRST_LSN) / 8))
}

function mix(n: number): number {
  let x = (n + 0x9e3779b9) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0
  return (x ^ (x >>> 16)) >>> 0
}

export function keyIndexOf(n: number): number {
  // The first KEYS writes give every key its image.
  return n < KEYS ? n : mix(n) % KEYS
}

export function keyOf(i: number): Buffer {
  return encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 16384, field5: 0, field6: i })
}

export function valueOfWrite(n: number): Value {
  const h = mix(n * 7 + 1)
  if (n < KEYS || h % 10 < 6) return { kind: 'image', page: Buffer.alloc(200 + (h % 300), h & 0xff) }
  const data = Buffer.alloc(4)
  data.writeUInt32BE(n)
  return { kind: 'record', recordKind: APPEND, willInit: false, data }
}

/** What each key holds at `lsn`. */
export function expectedAt(lsn: number): Buffer[] {
  const pages: Buffer[] = new Array(KEYS)
  const count = writesUpTo(lsn)
  const appends: Buffer[][] = Array.from({ length: KEYS }, () => [])
  for (let n = 0; n < count; n++) {
    const k = keyIndexOf(n)
    const v = valueOfWrite(n)
    if (v.kind === 'image') {
      pages[k] = v.page
      appends[k] = []
    } else {
      appends[k].push(v.data)
    }
  }
  return pages.map((p, k) => (p ? Buffer.concat([p, ...appends[k]]) : p))
}

/**
 * Ingests the history from the timeline's last_record_lsn on, 40 writes at a time, yielding to the event
 * loop between batches (background flushes, compaction and uploads run) and checkpointing about every
 * `checkpointEvery` writes, until the process is killed.
 */
export async function ingestForever(tl: Timeline, checkpointEvery = 2000): Promise<never> {
  const BATCH = 40
  let n = writesUpTo(tl.lastRecordLsn)
  for (;;) {
    const writes = []
    for (let i = 0; i < BATCH; i++, n++)
      writes.push({ key: keyOf(keyIndexOf(n)), lsn: lsnOf(n), value: valueOfWrite(n) })
    tl.ingest(writes, lsnOf(n - 1))
    if (n % checkpointEvery < BATCH) await tl.checkpoint()
    await new Promise((r) => setImmediate(r))
  }
}

/** Prints `<what> <value>` on stdout each time `value()` moves (looked at every 5 ms). */
export function reportChanges(what: string, value: () => number): void {
  let reported = value()
  setInterval(() => {
    const v = value()
    if (v === reported) return
    reported = v
    process.stdout.write(`${what} ${v}\n`)
  }, 5)
}
