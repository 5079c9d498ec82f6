/**
 * The compute side of zenith, for tests and benchmarks: basebackups to tar files, stock Postgres started
 * from them, and a compute's WAL fed back into a timeline.
 */
import { createWriteStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import type { Timeline } from '../../src/engine/timeline.js'
import { type BasebackupResult, basebackup } from '../../src/pgdata/basebackup.js'
import { WalIngest } from '../../src/pgdata/walingest.js'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { giveToPgUser } from '../../src/postgres/pg-bin.js'
import { TarWriter } from '../../src/postgres/tar.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import { makeTempDir, type PgCluster, type StartOptions, startPostgres } from './postgres.js'

/** Writes a basebackup of `tl` (at `lsn`, default its last record) to a tar file. */
export async function basebackupToFile(tl: Timeline, file: string, lsn?: Lsn): Promise<BasebackupResult> {
  const out = createWriteStream(file)
  const tar = new TarWriter(
    (chunk) => new Promise<void>((res, rej) => out.write(chunk, (e) => (e ? rej(e) : res()))),
  )
  const result = await basebackup(tl, tar, { lsn })
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())))
  return result
}

/**
 * Starts stock Postgres on the datadir a basebackup tar holds; with `standby`, as a hot standby (a
 * standby.signal file, no primary to stream from), which checks its settings against pg_control's.
 */
export function startPostgresFromTar(
  tarFile: string,
  opts: Omit<StartOptions, 'populate' | 'initdbArgs'> & { standby?: boolean } = {},
): Promise<PgCluster> {
  const { standby, ...start } = opts
  return startPostgres({
    ...start,
    populate: async (datadir) => {
      await execa('tar', ['-xf', tarFile, '-C', datadir])
      if (standby) await writeFile(path.join(datadir, 'standby.signal'), '')
    },
  })
}

/** The datadir a basebackup tar holds, extracted into a temp dir of the postgres OS user (for its tools). */
export async function extractBasebackup(tarFile: string): Promise<string> {
  const dir = await makeTempDir('zenith-basebackup-')
  await execa('tar', ['-xf', tarFile, '-C', dir])
  await giveToPgUser(dir)
  return dir
}

/** Ingests a pg_wal directory's records from `start` (to `end`), committing every `commitEvery`. */
export async function ingestWalDir(
  tl: Timeline,
  walDir: string,
  opts: { start: Lsn; end?: Lsn; commitEvery?: number },
): Promise<number> {
  const { reader } = await openWalDir(walDir, { start: opts.start, end: opts.end })
  const ingest = new WalIngest(tl)
  const every = opts.commitEvery ?? 2000
  let n = 0
  for await (const rec of reader.records()) {
    ingest.ingest(rec)
    if (++n % every === 0) ingest.commit()
  }
  ingest.commit()
  return n
}

/** pg_current_wal_insert_lsn() of a compute: where its next record goes. */
export async function walInsertLsn(pg: PgCluster): Promise<Lsn> {
  const [{ lsn }] = await pg.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn() AS lsn')
  return parseLsn(lsn)
}
