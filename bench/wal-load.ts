/**
 * How fast the pageserver ingests WAL when nothing else is in the way: `zenith wal load --synthetic`
 * against the pageserver of a fresh local cluster (its own process, direct mode, background work at its
 * defaults), against decoding the same WAL alone on one thread in the same run.
 *
 * Figures:
 *   ingest_images_mib_s   unpaced synthetic load of page images for RUN_MS: the WAL the pageserver took,
 *                         lag bounded by the walsender's 64 MiB hold
 *   decode_images_mib_s   the baseline: the first DECODE_BYTES of the same WAL decoded from memory
 *   ingest_vs_decode      ingest_images_mib_s / decode_images_mib_s (goal ≥ 0.5)
 *   half_rate_*           a paced load at half ingest_images_mib_s: achieved rate and lag p99
 *   ingest_small_*        unpaced load of commit records (4 MiB held): MiB/s and records per second
 *   generate_images_mib_s making the WAL alone (the load's own cost, on the same cores)
 *   safekeeper_images_mib_s  unpaced images pulled by one safekeeper (WAL let go once it has fsynced it)
 *   raw_write_fsync_mib_s    the baseline: the same bytes written sequentially to a file on the same disk,
 *                            128 KiB at a time (one XLogData), each followed by fdatasync
 *   safekeeper_vs_raw        safekeeper_images_mib_s / raw_write_fsync_mib_s
 */
import { chmod, mkdtemp, open, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { initSteps, startSteps, stopSteps } from '../src/control/cluster.js'
import { PageserverClient } from '../src/control/pageserver-client.js'
import { freePort } from '../src/control/process.js'
import { loadClusterConfig } from '../src/control/repo-config.js'
import { runSteps } from '../src/control/steps.js'
import type { WalLoadReport } from '../src/control/wal-load-report.js'
import { syntheticWalLoad } from '../src/control/wal-load-synthetic.js'
import { MiB } from '../src/lib/units.js'
import type { WalContinuation } from '../src/pageserver/api-types.js'
import { parseLsn } from '../src/postgres/lsn.js'
import { type RecordMix, SyntheticWal } from '../src/postgres/synthetic-wal.js'
import { decodeInMemory } from './wal-decode.js'

const RUN_MS = 10_000
const DECODE_BYTES = 256 * MiB
const CHUNK = 128 * 1024
/** 100,000 commit records: a few seconds of the pageserver's work, where 64 MiB of them is minutes. */
const SMALL_HOLD_BYTES = 4 * MiB

function log(msg: string) {
  process.stderr.write(`${msg}\n`)
}

const mib = (x: number) => Number(x.toFixed(1))

function generatorFrom(c: WalContinuation, mix: RecordMix): SyntheticWal {
  return new SyntheticWal({
    startLsn: parseLsn(c.last_record_lsn),
    prevLsn: c.prev_record_lsn === null ? 0 : parseLsn(c.prev_record_lsn),
    systemId: BigInt(c.system_id),
    segmentSize: c.wal_segment_size,
    timeline: c.pg_timeline,
    nextXid: c.next_xid,
    nextOid: c.next_oid,
    mix,
  })
}

/** Making DECODE_BYTES of the WAL a load of `mix` from `c` starts with, then decoding it: MiB/s of each. */
function generateAndDecode(c: WalContinuation, mix: RecordMix): { generate: number; decode: number } {
  const gen = generatorFrom(c, mix)
  const chunks: Buffer[] = []
  let t = performance.now()
  for (let n = 0; n < DECODE_BYTES; n += chunks.at(-1)!.length) chunks.push(gen.generate(CHUNK))
  const generate = DECODE_BYTES / MiB / ((performance.now() - t) / 1000)
  t = performance.now()
  const records = decodeInMemory(chunks, {
    startLsn: parseLsn(c.last_record_lsn),
    segmentSize: c.wal_segment_size,
    systemId: BigInt(c.system_id),
  })
  const decode = DECODE_BYTES / MiB / ((performance.now() - t) / 1000)
  if (records !== gen.records) throw new Error(`decoded ${records} records of the ${gen.records} made`)
  return { generate, decode }
}

/** Sequential writes of `bytes` in CHUNK pieces, fdatasync after each: MiB/s. */
async function rawWriteFsync(file: string, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x5a)
  const f = await open(file, 'w')
  try {
    const t = performance.now()
    for (let n = 0; n < bytes; n += CHUNK) {
      await f.write(chunk, 0, CHUNK, n)
      await f.datasync()
    }
    return bytes / MiB / ((performance.now() - t) / 1000)
  } finally {
    await f.close()
    await rm(file, { force: true })
  }
}

function logRun(what: string, r: WalLoadReport) {
  log(
    `${what}: ${r.achieved_wal_mib_s} MiB/s, ${(r.wal_bytes / MiB).toFixed(0)} MiB, lag p50 ${(r.ingest_lag_bytes_p50 / MiB).toFixed(1)} MiB p99 ${(r.ingest_lag_bytes_p99 / MiB).toFixed(1)} MiB, ${r.errors} errors${r.first_error ? ` (${r.first_error})` : ''}`,
  )
  if (r.errors > 0) throw new Error(`${what} failed: ${r.first_error}`)
}

export async function walLoadBench(): Promise<Record<string, number | string>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-wal-load-'))
  await chmod(work, 0o755)
  const repoDir = path.join(work, 'repo')
  const httpPort = await freePort()
  await runSteps(
    initSteps(repoDir, {
      pageserverPgPort: await freePort(),
      pageserverHttpPort: httpPort,
      computePortBase: await freePort(),
      // One safekeeper: the pageserver loads go to the pageserver directly, one goes through it.
      numSafekeepers: 1,
      safekeeperPortBases: { pgPortBase: (await freePort()) - 1, httpPortBase: (await freePort()) - 1 },
      storageControllerPort: await freePort(),
    }),
  )
  try {
    await runSteps(startSteps(repoDir))
    const cfg = loadClusterConfig(repoDir)
    const tenantId = cfg.defaultTenantId!
    const ps = new PageserverClient({ host: '127.0.0.1', port: httpPort })
    // Every load branches main at its tip, which nothing moves: each starts from this continuation.
    const main = await ps.walContinuation(tenantId, cfg.branches[tenantId].main)
    const load = (mix: RecordMix, rate: number, holdBytes?: number) =>
      syntheticWalLoad({ repoDir, rateBytesPerSec: rate, durationMs: RUN_MS, recordMix: mix, holdBytes })
    const unpaced = Number.POSITIVE_INFINITY

    log(`images, unpaced, ${RUN_MS / 1000} s ...`)
    const images = await load('images', unpaced)
    logRun('images unpaced', images)
    const half = images.achieved_wal_mib_s / 2
    log(`images at ${half.toFixed(1)} MiB/s ...`)
    const paced = await load('images', half * MiB)
    logRun('images at half', paced)
    log(`small records, unpaced, ${RUN_MS / 1000} s ...`)
    const small = await load('small', unpaced, SMALL_HOLD_BYTES)
    logRun('small unpaced', small)

    log(`images, unpaced, through the safekeeper, ${RUN_MS / 1000} s ...`)
    const sk = await syntheticWalLoad({
      repoDir,
      rateBytesPerSec: unpaced,
      durationMs: RUN_MS,
      recordMix: 'images',
      to: 'safekeepers',
      // The pageserver reads from the safekeeper at its own pace, which the hold does not wait for.
      drainTimeoutMs: 180_000,
    })
    logRun('images via the safekeeper', sk)
    const raw = await rawWriteFsync(path.join(work, 'raw-wal'), sk.wal_bytes)
    log(`raw sequential write + fdatasync of ${(sk.wal_bytes / MiB).toFixed(0)} MiB: ${raw.toFixed(0)} MiB/s`)

    log(`decoding ${DECODE_BYTES / MiB} MiB of the same WAL ...`)
    const img = generateAndDecode(main, 'images')
    log(`images: generate ${img.generate.toFixed(0)} MiB/s, decode ${img.decode.toFixed(0)} MiB/s`)
    const smallRecordBytes = small.wal_bytes / Math.max(1, small.transactions)
    return {
      ingest_images_mib_s: mib(images.achieved_wal_mib_s),
      ingest_images_lag_p99_mib: mib(images.ingest_lag_bytes_p99 / MiB),
      decode_images_mib_s: mib(img.decode),
      ingest_vs_decode: Number((images.achieved_wal_mib_s / img.decode).toFixed(3)),
      half_rate_target_mib_s: mib(half),
      half_rate_achieved_mib_s: mib(paced.achieved_wal_mib_s),
      half_rate_lag_p99_bytes: paced.ingest_lag_bytes_p99,
      ingest_small_mib_s: mib(small.achieved_wal_mib_s),
      ingest_small_records_per_s: Math.round((small.achieved_wal_mib_s * MiB) / smallRecordBytes),
      generate_images_mib_s: mib(img.generate),
      safekeeper_images_mib_s: mib(sk.achieved_wal_mib_s),
      safekeeper_lag_p99_mib: mib((sk.safekeeper_lag_bytes_p99 ?? 0) / MiB),
      raw_write_fsync_mib_s: mib(raw),
      safekeeper_vs_raw: Number((sk.achieved_wal_mib_s / raw).toFixed(3)),
    }
  } finally {
    await runSteps(await stopSteps(repoDir, { immediate: true })).catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}
