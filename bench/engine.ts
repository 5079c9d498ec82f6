/**
 * The storage engine end to end, on a data set built in this run: 1 GiB of 8 KiB page images ingested
 * through flush and L0→L1 compaction, random page reads at the latest and at older LSNs, read latency
 * while a compaction runs, branch creation on a small and on a large timeline, and the process' peak RSS.
 *
 * Figures (MB is 10^6 bytes), all from this run:
 *   seq_write_mb_s            the baseline: as many bytes written sequentially to one file, then fsync
 *   ingest_mb_s               page bytes / time until all of them are flushed and an L0→L1 compaction is done
 *   ingest_vs_seq_write       ingest_mb_s / seq_write_mb_s
 *   getpage_latest_per_s      random single-page reads at last_record_lsn, data set twice the page cache
 *   getpage_historic_per_s    the same at random LSNs within the data's history
 *   getpage_p99_us_*          read latency, from wanting the page to having it, while idle and while a
 *                             forced compaction (merge of several L0s, then image layers) runs
 *   branch_ms_small/large     median time to branch a timeline holding 10 MiB / 1 GiB
 *   peak_rss_over_budget_mb   peak RSS minus (memory budget + page cache of the repository open then)
 * Every page read is checked against the write it must return, so a fast wrong answer cannot pass.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { encodeKey } from '../src/engine/key.js'
import { DEFAULT_MEMORY_BUDGET } from '../src/engine/memory-budget.js'
import { DEFAULT_PAGE_CACHE_SLOTS, Repository } from '../src/engine/repository.js'
import type { Tenant } from '../src/engine/tenant.js'
import type { Timeline, Write } from '../src/engine/timeline.js'
import { percentile } from '../src/lib/percentile.js'
import { randomInt, rng } from '../test/harness/random.js'

const MiB = 1024 * 1024
const PAGE = 8192
/** Keys as Postgres makes them: 16 relations of 8192 blocks (64 MiB each). */
const RELATIONS = 16
const BLOCKS = 8192
const KEY_COUNT = RELATIONS * BLOCKS
/** 1 GiB of page images. */
const WRITES = 131072
/** Share of writes that give an already written page a new version; the rest write pages not seen yet. */
const REWRITE_SHARE = 1 / 8
const BATCH = 64
/** A full-page-image record: the page plus the record and block headers in front of it. */
const LSN_STEP = PAGE + 56
const INIT_LSN = 0x0100_0000
/** Distinct page contents; more would only cost memory, since the engine never looks inside a page. */
const POOL = 1024
const CONFIG = {
  checkpoint_distance: 256 * MiB,
  // With the 128 MiB memory budget, 1 GiB freezes into 8 L0s: at 4, compaction is due before the end.
  compaction_threshold: 4,
}
/** The second ingest, whose L0s the compaction under read load merges. */
const LOAD_L0S = 6
const LOAD_L0_BYTES = 32 * MiB
const LOAD_WRITES = (LOAD_L0S * LOAD_L0_BYTES) / PAGE
const MIN_READS = 100_000
const READ_MS = 5000
/** Pre-drawn reads, cycled: far more than the page cache holds, so cycling does not help the cache. */
const PLAN = 1 << 18
const IDLE_LATENCY_READS = 20_000
const BRANCHES = 9
const SMALL_TIMELINE_BYTES = 10 * MiB
const RSS_SAMPLE_MS = 50
/** fsync times of this size vary by 2x from one run to the next on a VM: the median of a few steadies it. */
const SEQ_WRITE_RUNS = 3

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function lsnOf(write: number): number {
  return INIT_LSN + (write + 1) * LSN_STEP
}

/** Postgres' pd_lsn: two little-endian u32 halves, high first. */
function stampLsn(page: Buffer, lsn: number) {
  page.writeUInt32LE(Math.floor(lsn / 0x1_0000_0000), 0)
  page.writeUInt32LE(lsn >>> 0, 4)
}

function pageLsn(page: Buffer): number {
  return page.readUInt32LE(0) * 0x1_0000_0000 + page.readUInt32LE(4)
}

/**
 * A heap page as lz4 would see one: a 24-byte header, line pointers, a zeroed hole, then tuples whose
 * headers repeat and whose data is random — about a third of the page does not compress.
 */
function makePage(next: () => number): Buffer {
  const page = Buffer.alloc(PAGE)
  const tuples = 40
  const tupleSize = 96
  const upper = PAGE - tuples * tupleSize
  page.writeUInt16LE(24 + 4 * tuples, 12)
  page.writeUInt16LE(upper, 14)
  page.writeUInt16LE(PAGE, 16)
  page.writeUInt16LE(PAGE | 4, 18)
  for (let t = 0; t < tuples; t++) {
    const at = upper + t * tupleSize
    page.writeUInt32LE(at | (tupleSize << 17) | (1 << 15), 24 + 4 * t)
    page.writeUInt32LE(731, at)
    page.writeUInt16LE(t + 1, at + 16)
    page.writeUInt16LE(3, at + 18)
    page[at + 22] = 24
    page.writeUInt32LE(t, at + 24)
    for (let i = at + 28; i < at + tupleSize; i++) page[i] = Math.floor(next() * 256)
  }
  return page
}

function percentileUs(ms: readonly number[], p: number): number {
  return Math.round(percentile(ms, p * 100) * 1000)
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** Runs reads until both `minReads` and `minMs` are reached. */
async function readRate(
  read: () => void,
  minReads = MIN_READS,
  minMs = READ_MS,
): Promise<{ reads: number; perS: number }> {
  const start = performance.now()
  let n = 0
  for (;;) {
    for (const end = n + 1024; n < end; n++) read()
    const ms = performance.now() - start
    if (n >= minReads && ms >= minMs) return { reads: n, perS: n / (ms / 1000) }
    // Lets the RSS sampler's timer fire.
    await tick()
  }
}

/** Peak RSS against what the repository open at the time is allowed: its memory budget and page cache. */
class RssWatch {
  peakMb = 0
  overMb = Number.NEGATIVE_INFINITY
  overPhase = ''
  private phase = 'setup'
  private allowance = 0
  private readonly timer = setInterval(() => this.sample(), RSS_SAMPLE_MS)

  enter(phase: string, cacheSlots: number) {
    this.sample()
    this.phase = phase
    this.allowance = DEFAULT_MEMORY_BUDGET + cacheSlots * PAGE
    log(`${phase} ...`)
  }

  sample() {
    const rss = process.memoryUsage.rss()
    this.peakMb = Math.max(this.peakMb, rss / 1e6)
    const over = (rss - this.allowance) / 1e6
    if (over > this.overMb) {
      this.overMb = over
      this.overPhase = this.phase
    }
  }

  stop() {
    this.sample()
    clearInterval(this.timer)
  }
}

/** A Postgres block key: relation `k / BLOCKS`, block `k % BLOCKS`. */
function pageKey(k: number): Buffer {
  return encodeKey({
    field1: 0,
    field2: 1663,
    field3: 5,
    field4: 16384 + Math.floor(k / BLOCKS),
    field5: 0,
    field6: k % BLOCKS,
  })
}

/**
 * The writes of the run and what each read must return. Typed arrays and keys made on demand keep the
 * bench's own memory to a few MB, so that the RSS figure is the engine's.
 */
class Workload {
  readonly pool: Buffer[]
  /** The key of each write. */
  readonly keyOf = new Int32Array(WRITES + LOAD_WRITES)
  /** Keys written at least once. */
  readonly written: Int32Array
  /** Write ids of key k's versions, oldest first: versions[first[k] .. first[k + 1]). */
  private readonly first = new Int32Array(KEY_COUNT + 1)
  private readonly versions = new Int32Array(WRITES + LOAD_WRITES)
  private readonly next = rng(20240607)
  private readonly int = randomInt(7)

  constructor() {
    this.pool = Array.from({ length: POOL }, () => makePage(this.next))
    const fresh = Int32Array.from({ length: KEY_COUNT }, (_, i) => i)
    for (let i = fresh.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = fresh[i]
      fresh[i] = fresh[j]
      fresh[j] = t
    }
    let used = 0
    for (let w = 0; w < WRITES; w++) {
      // A random earlier write's key: pages rewritten once are likelier to be rewritten again.
      this.keyOf[w] = w > 0 && this.next() < REWRITE_SHARE ? this.keyOf[this.int(w)] : fresh[used++]
    }
    this.written = fresh.slice(0, used)
    for (let w = WRITES; w < this.keyOf.length; w++) this.keyOf[w] = this.randomKey()
    for (const k of this.keyOf) this.first[k + 1]++
    for (let k = 0; k < KEY_COUNT; k++) this.first[k + 1] += this.first[k]
    const fill = this.first.slice(0, KEY_COUNT)
    for (let w = 0; w < this.keyOf.length; w++) this.versions[fill[this.keyOf[w]]++] = w
  }

  batch(from: number, to: number): Write[] {
    const out: Write[] = []
    for (let w = from; w < to; w++)
      out.push({ key: pageKey(this.keyOf[w]), lsn: lsnOf(w), value: this.image(w) })
    return out
  }

  /** Stamped in place: ingest copies the page before it returns, and a batch is far smaller than the pool. */
  image(w: number): { kind: 'image'; page: Buffer } {
    const page = this.pool[w % POOL]
    stampLsn(page, lsnOf(w))
    return { kind: 'image', page }
  }

  /** The newest write of `key` at or below `lsn` among the first `limit` writes. */
  at(key: number, lsn: number, limit: number): number {
    for (let i = this.first[key + 1] - 1; i >= this.first[key]; i--) {
      const w = this.versions[i]
      if (w < limit && lsnOf(w) <= lsn) return w
    }
    throw new Error(`key ${key} has no version at ${lsn}`)
  }

  /** Throws unless `page` is what write `w` stored; the whole page only when `full`, pd_lsn always. */
  check(page: Buffer | null, w: number, full: boolean) {
    const ok =
      page !== null &&
      page.length === PAGE &&
      pageLsn(page) === lsnOf(w) &&
      (!full || page.subarray(8).equals(this.pool[w % POOL].subarray(8)))
    if (!ok) throw new Error(`read of key ${this.keyOf[w]} did not return the page of write ${w}`)
  }

  randomKey(): number {
    return this.written[this.int(this.written.length)]
  }

  random(n: number): number {
    return this.int(n)
  }
}

async function ingest(tl: Timeline, work: Workload, from: number, to: number) {
  for (let b = from; b < to; b += BATCH) {
    const end = Math.min(b + BATCH, to)
    tl.ingest(work.batch(b, end), lsnOf(end - 1))
    // The flush task runs on this thread: a WAL receiver yields between messages too.
    await tick()
  }
}

function seqWrite(dir: string, pool: Buffer[], bytes: number): number {
  const chunk = Buffer.concat(pool.slice(0, 128))
  const file = path.join(dir, 'seq-write')
  const start = performance.now()
  const fd = openSync(file, 'w')
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(chunk.length, bytes - done)
      let off = 0
      while (off < n) off += writeSync(fd, chunk, off, n - off, done + off)
      done += n
    }
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  const secs = (performance.now() - start) / 1000
  rmSync(file)
  return bytes / 1e6 / secs
}

function branchMs(tenant: Tenant, tl: Timeline): number {
  const times: number[] = []
  for (let i = 0; i < BRANCHES; i++) {
    const start = performance.now()
    tenant.branch(tl.timelineId)
    times.push(performance.now() - start)
  }
  return median(times)
}

/**
 * Reads at last_record_lsn one at a time, yielding before each as a server between requests would, until
 * `done`. A read's latency runs from the end of the one before, so time the thread spends on other work
 * (flush, compaction bookkeeping, image creation) counts against the read that waited for it.
 */
async function latencies(
  tl: Timeline,
  work: Workload,
  limit: number,
  done: (reads: number) => boolean,
): Promise<{ wait: number[]; call: number[]; merging: boolean[] }> {
  const wait: number[] = []
  const call: number[] = []
  const merging: boolean[] = []
  while (!done(wait.length)) {
    const k = work.randomKey()
    merging.push(tl.layers.l0().length > 0)
    const issued = performance.now()
    await tick()
    const start = performance.now()
    const page = tl.get(pageKey(k), tl.lastRecordLsn)
    const end = performance.now()
    wait.push(end - issued)
    call.push(end - start)
    work.check(page, work.at(k, tl.lastRecordLsn, limit), false)
  }
  return { wait, call, merging }
}

export async function engineBench(): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-bench-engine-'))
  const rss = new RssWatch()
  let repo: Repository | null = null
  const baselineRssMb = process.memoryUsage.rss() / 1e6
  try {
    rss.enter('generating the workload', 0)
    const work = new Workload()
    const dataBytes = WRITES * PAGE

    rss.enter(`sequential write of ${dataBytes / MiB} MiB + fsync, median of ${SEQ_WRITE_RUNS}`, 0)
    const seqMbS = median(Array.from({ length: SEQ_WRITE_RUNS }, () => seqWrite(dir, work.pool, dataBytes)))
    log(`  ${seqMbS.toFixed(0)} MB/s`)

    rss.enter(`ingest of ${dataBytes / MiB} MiB, flush, L0→L1 compaction`, DEFAULT_PAGE_CACHE_SLOTS)
    repo = await Repository.open(dir, { memoryBudget: DEFAULT_MEMORY_BUDGET, background: false })
    const tenant = repo.createTenant({ config: CONFIG })
    const tl = tenant.createTimeline(INIT_LSN)
    const tlId = tl.timelineId
    const t0 = performance.now()
    await ingest(tl, work, 0, WRITES)
    const t1 = performance.now()
    await tl.checkpoint()
    const t2 = performance.now()
    const l0Before = tl.layers.l0().length
    const { compaction } = await tenant.compact(tl)
    const t3 = performance.now()
    if (!compaction) throw new Error(`no compaction ran over ${l0Before} L0 layers`)
    const ingestMbS = dataBytes / 1e6 / ((t3 - t0) / 1000)
    const layersAfter = tl.layers.layers.length
    const imagesAfter = tl.layers.layers.filter((l) => l.isImage).length
    log(
      `  ${ingestMbS.toFixed(0)} MB/s: ingest ${((t1 - t0) / 1000).toFixed(1)} s, checkpoint ${((t2 - t1) / 1000).toFixed(1)} s, ` +
        `compaction of ${compaction.inputs} L0s into ${compaction.outputs} L1s ${((t3 - t2) / 1000).toFixed(1)} s`,
    )

    rss.enter('branches', DEFAULT_PAGE_CACHE_SLOTS)
    const small = tenant.createTimeline(INIT_LSN)
    const smallWrites = SMALL_TIMELINE_BYTES / PAGE
    for (let b = 0; b < smallWrites; b += BATCH) small.ingest(work.batch(b, b + BATCH), lsnOf(b + BATCH - 1))
    await small.checkpoint()
    const branchSmall = branchMs(tenant, small)
    const branchLarge = branchMs(tenant, tl)
    log(`  small ${branchSmall.toFixed(2)} ms, large ${branchLarge.toFixed(2)} ms`)
    await repo.close()
    repo = null

    // The page cache holds half of the pages that exist at the latest LSN.
    const slots = Math.floor(work.written.length / 2)
    rss.enter(`reopening with a page cache of ${slots} slots`, slots)
    repo = await Repository.open(dir, {
      pageCacheSlots: slots,
      memoryBudget: DEFAULT_MEMORY_BUDGET,
      background: false,
    })
    const rtenant = repo.tenants()[0]
    const rtl = rtenant.timeline(tlId)
    const last = rtl.lastRecordLsn

    const latestKey = Int32Array.from({ length: PLAN }, () => work.randomKey())
    const latestWrite = latestKey.map((k) => work.at(k, last, WRITES))
    // One sequence through warm-up and measurement, so measuring does not replay what warming cached.
    let latestNext = 0
    const readLatest = () => {
      const i = latestNext++
      const j = i % PLAN
      work.check(rtl.get(pageKey(latestKey[j]), last), latestWrite[j], (i & 255) === 0)
    }
    rss.enter('warming the page cache', slots)
    await readRate(readLatest, 2 * slots, 0)
    rss.enter('random reads at the latest LSN', slots)
    const before = repo.pageCache.stats()
    const latest = await readRate(readLatest)
    const after = repo.pageCache.stats()
    const lookups = after.hits + after.misses - before.hits - before.misses
    const misses = after.misses - before.misses
    log(`  ${latest.perS.toFixed(0)} reads/s, ${(misses / latest.reads).toFixed(2)} page cache misses a read`)

    rss.enter('random reads at older LSNs', slots)
    const histWrite = new Int32Array(PLAN)
    const histLsn = new Float64Array(PLAN)
    for (let j = 0; j < PLAN; j++) {
      const w = work.random(WRITES)
      histLsn[j] = lsnOf(w) + work.random(last - lsnOf(w) + 1)
      histWrite[j] = work.at(work.keyOf[w], histLsn[j], WRITES)
    }
    let histNext = 0
    const historic = await readRate(() => {
      const i = histNext++
      const j = i % PLAN
      work.check(rtl.get(pageKey(work.keyOf[histWrite[j]]), histLsn[j]), histWrite[j], (i & 255) === 0)
    })
    log(`  ${historic.perS.toFixed(0)} reads/s`)

    rss.enter('read latency while idle', slots)
    const idle = await latencies(rtl, work, WRITES, (n) => n >= IDLE_LATENCY_READS)

    rss.enter(`ingest of ${LOAD_L0S} L0s of ${LOAD_L0_BYTES / MiB} MiB`, slots)
    rtenant.updateConfig({ checkpoint_distance: LOAD_L0_BYTES })
    await ingest(rtl, work, WRITES, WRITES + LOAD_WRITES)
    await rtl.checkpoint()
    const loadL0s = rtl.layers.l0().length

    rss.enter(`read latency during a forced compaction of ${loadL0s} L0s`, slots)
    let compacting = true
    const cStart = performance.now()
    const job = rtenant.compact(rtl, true)
    const ended = () => {
      compacting = false
      return performance.now()
    }
    // Ends the read loop whichever way the compaction goes; `await job` below reports a failure.
    const cEnd = job.then(ended, ended)
    const busy = await latencies(rtl, work, WRITES + LOAD_WRITES, () => !compacting)
    const forced = await job
    const forcedSecs = ((await cEnd) - cStart) / 1000
    const mergeWait = busy.wait.filter((_, i) => busy.merging[i])
    const imageWait = busy.wait.filter((_, i) => !busy.merging[i])
    log(
      `  ${busy.wait.length} reads over ${forcedSecs.toFixed(1)} s; p99 ${percentileUs(busy.wait, 0.99)} µs ` +
        `(merge ${percentileUs(mergeWait, 0.99)}, images ${percentileUs(imageWait, 0.99)}), ` +
        `max ${percentileUs(busy.wait, 1)} µs; ${forced.images.created} image layers`,
    )
    const layersEnd = rtl.layers.layers.length
    await repo.close()
    repo = null
    rss.stop()

    return {
      data_bytes: dataBytes,
      distinct_keys: work.written.length,
      seq_write_mb_s: Math.round(seqMbS),
      ingest_mb_s: Math.round(ingestMbS),
      ingest_vs_seq_write: Number((ingestMbS / seqMbS).toFixed(3)),
      ingest_s: Number(((t1 - t0) / 1000).toFixed(2)),
      ingest_checkpoint_s: Number(((t2 - t1) / 1000).toFixed(2)),
      ingest_compaction_s: Number(((t3 - t2) / 1000).toFixed(2)),
      compaction_threshold: CONFIG.compaction_threshold,
      l0_before_compaction: l0Before,
      l1_after_compaction: compaction.outputs,
      layers_after: layersAfter,
      image_layers_after: imagesAfter,
      page_cache_slots: slots,
      page_cache_lookups_per_read: Number((lookups / latest.reads).toFixed(2)),
      page_cache_misses_per_read: Number((misses / latest.reads).toFixed(2)),
      getpage_latest_per_s: Math.round(latest.perS),
      getpage_historic_per_s: Math.round(historic.perS),
      getpage_p99_us_idle: percentileUs(idle.wait, 0.99),
      getpage_p99_us_during_compaction: percentileUs(busy.wait, 0.99),
      getpage_p99_us_during_merge: percentileUs(mergeWait, 0.99),
      getpage_p99_us_during_image_creation: percentileUs(imageWait, 0.99),
      getpage_p99_us_get_call_during_compaction: percentileUs(busy.call, 0.99),
      getpage_max_us_during_compaction: percentileUs(busy.wait, 1),
      reads_during_compaction: busy.wait.length,
      forced_compaction_s: Number(forcedSecs.toFixed(2)),
      forced_compaction_l0s: loadL0s,
      image_layers_created: forced.images.created,
      layers_end: layersEnd,
      branch_ms_small: Number(branchSmall.toFixed(3)),
      branch_ms_large: Number(branchLarge.toFixed(3)),
      branch_ms_large_over_small: Number((branchLarge / branchSmall).toFixed(2)),
      baseline_rss_mb: Math.round(baselineRssMb),
      peak_rss_mb: Math.round(rss.peakMb),
      peak_rss_over_budget_mb: Math.round(rss.overMb),
      peak_rss_over_budget_phase: rss.overPhase,
    }
  } finally {
    rss.stop()
    // After a failure the engine may be mid-write; the error that got us here matters more than its close.
    await repo?.close({ flush: false }).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
}
