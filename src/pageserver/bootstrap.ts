/**
 * A timeline for a new cluster: initdb in a throwaway directory, import of the shut-down datadir at its
 * checkpoint LSN, and a checkpoint, so the initial data is on disk before anyone can depend on it (no
 * WAL exists from which it could be ingested again).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Tenant } from '../engine/tenant.js'
import type { Timeline } from '../engine/timeline.js'
import type { LogFn } from '../lib/log.js'
import { importDatadir } from '../pgdata/import.js'
import { formatLsn } from '../postgres/lsn.js'
import { initdb, pgBinDir } from '../postgres/pg-bin.js'

export async function bootstrapTimeline(
  tenant: Tenant,
  timelineId: string,
  opts: { pgDistribDir: string; log: LogFn },
): Promise<Timeline> {
  // Under the system temp dir: the postgres OS user (as which initdb runs when we are root) may not be
  // able to enter the pageserver's working directory.
  const work = await mkdtemp(path.join(os.tmpdir(), 'zenith-initdb-'))
  try {
    await chmod(work, 0o755)
    const datadir = path.join(work, 'pgdata')
    await initdb(datadir, { binDir: pgBinDir(opts.pgDistribDir), args: ['--no-sync'] })
    const { timeline, lsn, relations } = importDatadir(tenant, datadir, timelineId)
    await timeline.checkpoint()
    opts.log('info', 'timeline bootstrapped by initdb', {
      tenantId: tenant.tenantId,
      timelineId,
      lsn: formatLsn(lsn),
      relations,
    })
    return timeline
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
