/**
 * The compute side of zenith, for tests and benchmarks: basebackups to tar files, stock Postgres started
 * from them, and a compute's WAL fed back into a timeline.
 */
import { createWriteStream } from 'node:fs'
import { execa } from 'execa'
import type { Timeline } from '../../src/engine/timeline.js'
import { type BasebackupResult, basebackup } from '../../src/pgdata/basebackup.js'
import { WalIngest } from '../../src/pgdata/walingest.js'
import type { Lsn } from '../../src/postgres/lsn.js'
import { TarWriter } from '../../src/postgres/tar.js'
import { openWalDir } from '../../src/postgres/wal-dir.js'
import { type PgCluster, type StartOptions, startPostgres } from './postgres.js'

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

/** Starts stock Postgres on the datadir a basebackup tar holds. */
export function startPostgresFromTar(
  tarFile: string,
  opts: Omit<StartOptions, 'populate' | 'initdbArgs'> = {},
): Promise<PgCluster> {
  return startPostgres({
    ...opts,
    populate: async (datadir) => {
      await execa('tar', ['-xf', tarFile, '-C', datadir])
    },
  })
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
