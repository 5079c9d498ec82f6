/**
 * Remote storage: upload speed of the upload queue, attach time of a tenant of ≥ 200 MB, and a tenant
 * migration under load, each against a baseline measured in the same run.
 *
 * Figures (MB = 10^6 bytes):
 *   upload_local_mb_s, upload_s3_mb_s   the tenant's layer files (a pgbench database, scale 15, imported
 *                       and compacted) uploaded by the upload queue, with an index, to the local-directory
 *                       backend / to S3 on moto_server: layer bytes / seconds from opening the repository
 *                       with that (empty) remote storage until its upload queue is flushed
 *   seq_write_mb_s      the baseline: the same bytes written to one local file, 1 MiB per write, then
 *                       fsync; median of 3
 *   upload_local_vs_seq_write, upload_s3_vs_seq_write   the ratios
 *   attach_{local,s3}_index_ms     a fresh in-process pageserver: PUT location_config (AttachedSingle) →
 *                       its answer (every timeline's index downloaded, timelines registered)
 *   attach_{local,s3}_first_getpage_ms   then one pagestream GetPage of a pgbench_accounts block → its
 *                       answer (the layers that page needs downloaded on demand); the page is checked
 *                       against the source datadir's
 *   attach_{local,s3}_downloaded_bytes   layer bytes on the new pageserver's disk after that GetPage
 *   copy_tenant_ms      the baseline: `cp -r` of the tenant's directory on local disk (page cache warm,
 *                       no fsync: a lower bound of downloading everything)
 *   copy_tenant_durable_ms   the same cp followed by `sync` of every copied file (a durable copy)
 *   attach_{local,s3}_vs_copy, attach_{local,s3}_vs_copy_durable   (index + first GetPage) / those
 *   attach_{local,s3}_downloaded_fraction   downloaded bytes / the tenant's layer bytes
 *   migration_s         `tenant migrate --to 2` (migrateSteps, as the CLI runs them) on a cluster with one
 *                       safekeeper and two pageservers, every server a process of its own, while 3
 *                       writers commit one 500-byte row per transaction through the whole move
 *   commits_per_s_before, commits_per_s_during, commits_per_s_after   the writers' acknowledged commits
 *                       per second in a window before the move (the baseline), during it, and after it
 *   commits_during_vs_before, commits_after_vs_before   the ratios
 *   migration_writer_errors   statements that failed (0 expected); migration_lost_commits   acknowledged
 *                       rows missing from the table afterwards (0 expected)
 * ZENITH_BENCH_REMOTE_SCALE (default 15) sets the pgbench scale, for developing the benchmark at a small size.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { initSteps } from '../src/control/cluster.js'
import { connstrOf, startEndpointSteps, stopEndpoint } from '../src/control/endpoints.js'
import { pageserverClientOf } from '../src/control/layout.js'
import { migrateSteps } from '../src/control/migrate.js'
import { PageserverClient } from '../src/control/pageserver-client.js'
import { startPageserver, stopPageserver } from '../src/control/pageserver-process.js'
import { ensurePageserver } from '../src/control/pageservers.js'
import { freePort, waitFor } from '../src/control/process.js'
import { loadClusterConfig } from '../src/control/repo-config.js'
import { startSafekeeper, stopSafekeeper } from '../src/control/safekeeper-process.js'
import { runSteps } from '../src/control/steps.js'
import { startStorageController, stopStorageController } from '../src/control/storage-controller-process.js'
import { tenantPageserverId } from '../src/control/tenant-placement.js'
import { parseLayerName } from '../src/engine/layer-name.js'
import { LocalFsStorage } from '../src/engine/local-fs-storage.js'
import type { RemoteStorage } from '../src/engine/remote-storage.js'
import { Repository } from '../src/engine/repository.js'
import { DEFAULT_PAGESERVER_CONFIG } from '../src/pageserver/config.js'
import { Pageserver } from '../src/pageserver/pageserver.js'
import {
  decodeResponse,
  encodeRequest,
  LATEST_LSN,
  type PagestreamRequest,
  type RelTagWire,
} from '../src/pageserver/pagestream.js'
import type { RemoteStorageConfig } from '../src/pageserver/remote-storage-config.js'
import { S3Storage } from '../src/pageserver/s3-storage.js'
import { postgresImageKeyFilter } from '../src/pgdata/datadir-keyspace.js'
import { importDatadir } from '../src/pgdata/import.js'
import { formatLsn, parseLsn } from '../src/postgres/lsn.js'
import { walQuietUntil } from '../src/postgres/wal-page.js'
import { PgClient } from '../src/protocol/client.js'
import { freePortBase } from '../test/harness/cli.js'
import { MOTO_ENV, type Moto, startMoto } from '../test/harness/moto.js'
import { startPostgres } from '../test/harness/postgres.js'
import { query } from '../test/harness/sql.js'
import { AckWriters } from '../test/harness/writers.js'
import { log } from './pgbench.js'

const SCALE = Number(process.env.ZENITH_BENCH_REMOTE_SCALE ?? 15)
const BLCKSZ = 8192
const MiB = 1024 * 1024
const S3_PREFIX = 'bench'
/** Generation of the tenant as imported (the repository's default), and of every attach here. */
const ATTACH_GENERATION = 2
const WRITERS = 3
const WINDOW_S = 10
const WARMUP_S = 3

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const secondsSince = (t: number) => (performance.now() - t) / 1000
const round = (x: number, digits: number) => Number(x.toFixed(digits))

interface Source {
  repoDir: string
  tenantId: string
  timelineId: string
  tenantDir: string
  layerFiles: string[]
  layerBytes: number
  rel: RelTagWire
  blkno: number
  /** The block as the source datadir held it. */
  page: Buffer
}

/** Layer files directly in `dir`, with their total size. */
function layersIn(dir: string): { files: string[]; bytes: number } {
  const files = readdirSync(dir)
    .filter((n) => parseLayerName(n) !== null)
    .map((n) => path.join(dir, n))
  return { files, bytes: files.reduce((n, f) => n + statSync(f).size, 0) }
}

/** pgbench -i at SCALE on stock Postgres, imported into a repository and compacted into L1s and images. */
async function buildSource(work: string): Promise<Source> {
  log(`source: pgbench -i -s ${SCALE}, import, compaction ...`)
  const pg = await startPostgres({ name: 'bench-remote-source' })
  let datadir: string
  let rel: RelTagWire
  let blkno: number
  let page: Buffer
  try {
    await pg.run('pgbench', ['-i', '-q', '-s', String(SCALE), 'postgres'])
    const [r] = await pg.query<{ rel: number; db: number; blocks: number }>(
      `SELECT pg_relation_filenode('pgbench_accounts')::int AS rel, (pg_relation_size('pgbench_accounts') / ${BLCKSZ})::int AS blocks,
         (SELECT oid FROM pg_database WHERE datname = 'postgres')::int AS db`,
    )
    await pg.stop()
    datadir = pg.datadir
    rel = { spcNode: 1663, dbNode: r.db, relNode: r.rel, forkNum: 0 }
    // Within the first 1 GiB segment, so the page can be read from one file below.
    blkno = Math.min(Math.floor(r.blocks / 2), 131071)
    const fd = openSync(path.join(datadir, 'base', String(r.db), String(r.rel)), 'r')
    page = Buffer.alloc(BLCKSZ)
    readSync(fd, page, 0, BLCKSZ, blkno * BLCKSZ)
    closeSync(fd)
  } catch (err) {
    await pg.destroy()
    throw err
  }
  const repoDir = path.join(work, 'source')
  const repo = await Repository.open(repoDir, {
    background: false,
    imageKeyFilter: postgresImageKeyFilter,
    quietUntil: walQuietUntil,
  })
  try {
    const tenant = repo.createTenant()
    const { timeline } = importDatadir(tenant, datadir)
    await pg.destroy()
    await timeline.checkpoint()
    // As a pageserver's compaction leaves a tenant: L1 deltas and image layers of compaction_target_size.
    await tenant.compact(timeline, true)
    const tenantDir = tenant.dir
    const tlDir = path.join(tenantDir, 'timelines', timeline.timelineId)
    await repo.close({ flush: true })
    const { files, bytes } = layersIn(tlDir)
    log(`source: ${files.length} layers, ${(bytes / 1e6).toFixed(0)} MB`)
    return {
      repoDir,
      tenantId: tenant.tenantId,
      timelineId: timeline.timelineId,
      tenantDir,
      layerFiles: files,
      layerBytes: bytes,
      rel,
      blkno,
      page,
    }
  } catch (err) {
    await repo.close({ flush: false })
    throw err
  }
}

/** The source repository opened on empty remote storage: seconds until its upload queue has it all. */
async function uploadSeconds(src: Source, storage: RemoteStorage): Promise<number> {
  const t = performance.now()
  const repo = await Repository.open(src.repoDir, { background: false, remote: { storage } })
  try {
    await repo.tenant(src.tenantId).timeline(src.timelineId).uploads!.flush()
    return secondsSince(t)
  } finally {
    await repo.close({ flush: false })
  }
}

/** The baseline: the layer files' bytes written to one file, 1 MiB per write, then fsync. */
function seqWriteSeconds(src: Source, out: string): number {
  const buf = Buffer.alloc(MiB)
  const t = performance.now()
  const fd = openSync(out, 'w')
  try {
    for (const f of src.layerFiles) {
      const inFd = openSync(f, 'r')
      for (let n = readSync(inFd, buf, 0, MiB, null); n > 0; n = readSync(inFd, buf, 0, MiB, null))
        writeSync(fd, buf, 0, n)
      closeSync(inFd)
    }
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return secondsSince(t)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** One GetPage at the latest LSN over the page service; the page, or an error. */
async function getPage(pgPort: number, src: Source): Promise<Buffer> {
  const c = await PgClient.connect({ host: '127.0.0.1', port: pgPort, user: 'postgres' })
  try {
    const stream = await c.copyBoth(`pagestream_v3 ${src.tenantId} ${src.timelineId}`)
    const req: PagestreamRequest = {
      kind: 'getpage',
      rel: src.rel,
      blkno: src.blkno,
      reqid: 1n,
      requestLsn: LATEST_LSN,
      notModifiedSince: 0,
    }
    stream.send(encodeRequest(req, 3))
    const { value } = await stream[Symbol.asyncIterator]().next()
    const r = decodeResponse(value as Buffer, req, 3)
    stream.end()
    if (r.kind !== 'getpage') throw new Error(`GetPage answered ${JSON.stringify(r)}`)
    return r.page
  } finally {
    await c.close()
  }
}

/** A fresh pageserver in this process attaches the tenant from `remote`, then answers one GetPage. */
async function attachRun(
  work: string,
  name: string,
  src: Source,
  remote: RemoteStorageConfig,
): Promise<{ indexMs: number; getpageMs: number; downloadedBytes: number }> {
  const dir = path.join(work, `attach-${name}`)
  const [pgPort, httpPort] = [await freePort(), await freePort()]
  const ps = await Pageserver.start(dir, {
    log: () => {},
    config: {
      ...DEFAULT_PAGESERVER_CONFIG,
      listenPgAddr: { host: '127.0.0.1', port: pgPort },
      listenHttpAddr: { host: '127.0.0.1', port: httpPort },
      remoteStorage: remote,
    },
  })
  try {
    const client = new PageserverClient({ host: '127.0.0.1', port: httpPort })
    const t = performance.now()
    await client.locationConfig(src.tenantId, { mode: 'AttachedSingle', generation: ATTACH_GENERATION })
    const indexMs = performance.now() - t
    const page = await getPage(pgPort, src)
    const getpageMs = performance.now() - t - indexMs
    if (!page.equals(src.page))
      throw new Error(`attach from ${name}: block ${src.blkno} differs from the source datadir's`)
    const tlDir = path.join(ps.tenant(src.tenantId).dir, 'timelines', src.timelineId)
    const downloadedBytes = layersIn(tlDir).bytes
    log(
      `attach from ${name}: index ${indexMs.toFixed(0)} ms, first GetPage ${getpageMs.toFixed(0)} ms, ${(downloadedBytes / 1e6).toFixed(0)} MB downloaded`,
    )
    return { indexMs, getpageMs, downloadedBytes }
  } finally {
    await ps.stop()
  }
}

/** Writers commit on main while the tenant moves from pageserver 1 to 2. */
async function migrationRun(work: string) {
  const repoDir = path.join(work, 'cluster')
  // Pageserver 2 listens on the first one's ports plus one.
  const [pgPort, httpPort] = [(await freePortBase(2)) + 1, (await freePortBase(2)) + 1]
  const skBase = await freePortBase(2)
  await runSteps(
    initSteps(repoDir, {
      pageserverPgPort: pgPort,
      pageserverHttpPort: httpPort,
      computePortBase: await freePort(),
      numSafekeepers: 1,
      safekeeperPortBases: { pgPortBase: skBase, httpPortBase: skBase + 1 },
      storageControllerPort: await freePort(),
    }),
  )
  await startStorageController(repoDir)
  let writers: AckWriters | null = null
  try {
    await startSafekeeper(repoDir, 1)
    await startPageserver(repoDir, 1)
    ensurePageserver(repoDir, 2)
    await startPageserver(repoDir, 2)
    await runSteps((await startEndpointSteps(repoDir, 'main')).steps)
    const e = loadClusterConfig(repoDir).endpoints.main
    const connstr = connstrOf(e.port)
    await query(connstr, 'CREATE TABLE acks (writer int, seq int, pad text, PRIMARY KEY (writer, seq))')
    await query(
      connstr,
      'CREATE TABLE bulk AS SELECT i, md5(i::text) AS pad FROM generate_series(1, 100000) i',
    )
    // The windows start once pageserver 1 has ingested the bulk load: its catching up is not the move's.
    const flushed = parseLsn(
      (await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn'))[0].lsn,
    )
    const ps1 = pageserverClientOf(repoDir, 1)
    const ingested = await waitFor(
      async () => parseLsn((await ps1.timeline(e.tenantId, e.timelineId)).last_record_lsn) >= flushed,
      60_000,
    )
    if (!ingested) throw new Error(`pageserver 1 did not ingest up to ${formatLsn(flushed)} within 60 s`)
    writers = new AckWriters(connstr, WRITERS, "INSERT INTO acks VALUES ($1, $2, repeat('w', 500))")
    writers.start()
    await sleep(WARMUP_S * 1000)
    log(`migration: ${WINDOW_S} s of writers before the move ...`)
    const c0 = writers.total()
    let t = performance.now()
    await sleep(WINDOW_S * 1000)
    const before = (writers.total() - c0) / secondsSince(t)
    const c1 = writers.total()
    t = performance.now()
    await runSteps(migrateSteps(repoDir, { to: 2 }).steps, (title) => log(`migration: ${title}`))
    const migrationS = secondsSince(t)
    const during = (writers.total() - c1) / migrationS
    const c2 = writers.total()
    t = performance.now()
    await sleep(WINDOW_S * 1000)
    const after = (writers.total() - c2) / secondsSince(t)
    await writers.stop()
    const servedBy = tenantPageserverId(repoDir, e.tenantId)
    if (servedBy !== 2) throw new Error(`after the move the tenant is on pageserver ${servedBy}, not 2`)
    const rows = await query<{ k: string }>(connstr, "SELECT writer || '/' || seq AS k FROM acks")
    const have = new Set(rows.map((r) => r.k))
    const lost = writers.ackedRows().filter((k) => !have.has(k)).length
    log(
      `migration: ${migrationS.toFixed(1)} s; commits/s before ${before.toFixed(0)}, during ${during.toFixed(0)}, after ${after.toFixed(0)}; ${writers.failures()} errors, ${lost} lost`,
    )
    await stopEndpoint(repoDir, 'main')
    return { migrationS, before, during, after, errors: writers.failures(), lost }
  } finally {
    await writers?.stop()
    for (const id of [1, 2]) await stopPageserver(repoDir, id).catch(() => undefined)
    await stopSafekeeper(repoDir, 1).catch(() => undefined)
    await stopStorageController(repoDir)
  }
}

export async function remoteBench(): Promise<Record<string, number | string>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-bench-remote-'))
  await chmod(work, 0o755)
  let moto: Moto | undefined
  let s3: S3Storage | undefined
  try {
    const src = await buildSource(work)
    const mb = src.layerBytes / 1e6

    const writes: number[] = []
    for (let i = 0; i < 3; i++) {
      writes.push(seqWriteSeconds(src, path.join(work, 'seq-write')))
      await rm(path.join(work, 'seq-write'))
    }
    const seqWriteMbS = mb / median(writes)
    log(`sequential write: ${seqWriteMbS.toFixed(0)} MB/s`)

    const localDir = path.join(work, 'remote-local')
    const uploadLocalMbS = mb / (await uploadSeconds(src, new LocalFsStorage(localDir)))
    log(`upload to the local directory: ${uploadLocalMbS.toFixed(0)} MB/s`)
    moto = await startMoto()
    // The in-process pageservers find moto's credentials where the SDK looks for them.
    Object.assign(process.env, MOTO_ENV)
    s3 = new S3Storage({ ...moto.s3, prefix: S3_PREFIX })
    const uploadS3MbS = mb / (await uploadSeconds(src, s3))
    log(`upload to S3 on moto_server: ${uploadS3MbS.toFixed(0)} MB/s`)

    const copy = performance.now()
    const copyDir = path.join(work, 'tenant-copy')
    await execa('cp', ['-r', src.tenantDir, copyDir])
    const copyMs = performance.now() - copy
    // Then fsync of every copied file, as a download writes each layer durably.
    await execa(
      'sync',
      readdirSync(copyDir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(copyDir, f)),
    )
    const copyDurableMs = performance.now() - copy
    log(`cp -r of the tenant: ${copyMs.toFixed(0)} ms, with sync of the copy ${copyDurableMs.toFixed(0)} ms`)
    const local = await attachRun(work, 'local', src, { kind: 'local', localPath: localDir })
    const viaS3 = await attachRun(work, 's3', src, {
      kind: 's3',
      bucket: moto.bucket,
      prefix: S3_PREFIX,
      region: moto.s3.region,
      endpoint: moto.endpoint,
    })

    // One backend's attach figures, against both copies of the tenant.
    const attachFields = (name: string, a: typeof local) => {
      const ms = a.indexMs + a.getpageMs
      return {
        [`attach_${name}_index_ms`]: Math.round(a.indexMs),
        [`attach_${name}_first_getpage_ms`]: Math.round(a.getpageMs),
        [`attach_${name}_downloaded_bytes`]: a.downloadedBytes,
        [`attach_${name}_vs_copy`]: round(ms / copyMs, 3),
        [`attach_${name}_vs_copy_durable`]: round(ms / copyDurableMs, 3),
        [`attach_${name}_downloaded_fraction`]: round(a.downloadedBytes / src.layerBytes, 3),
      }
    }
    const m = await migrationRun(work)
    return {
      tenant_layers: src.layerFiles.length,
      tenant_layer_bytes: src.layerBytes,
      seq_write_mb_s: Math.round(seqWriteMbS),
      upload_local_mb_s: Math.round(uploadLocalMbS),
      upload_s3_mb_s: Math.round(uploadS3MbS),
      upload_local_vs_seq_write: round(uploadLocalMbS / seqWriteMbS, 3),
      upload_s3_vs_seq_write: round(uploadS3MbS / seqWriteMbS, 3),
      copy_tenant_ms: Math.round(copyMs),
      copy_tenant_durable_ms: Math.round(copyDurableMs),
      ...attachFields('local', local),
      ...attachFields('s3', viaS3),
      migration_s: round(m.migrationS, 2),
      commits_per_s_before: Math.round(m.before),
      commits_per_s_during: Math.round(m.during),
      commits_per_s_after: Math.round(m.after),
      commits_during_vs_before: round(m.during / m.before, 3),
      commits_after_vs_before: round(m.after / m.before, 3),
      migration_writer_errors: m.errors,
      migration_lost_commits: m.lost,
    }
  } finally {
    s3?.close()
    await moto?.stop()
    await rm(work, { recursive: true, force: true })
  }
}
