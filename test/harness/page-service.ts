/** The page service as a Postgres client sees it, for tests: `show`, and computes started from it. */
import {
  decodeResponse,
  encodeRequest,
  type PagestreamRequest,
  type RelTagWire,
} from '../../src/pageserver/pagestream.js'
import type { Lsn } from '../../src/postgres/lsn.js'
import { extractTar } from '../../src/postgres/tar-extract.js'
import { PgClient } from '../../src/protocol/client.js'
import { type PgCluster, type SettingValue, startPostgres } from './postgres.js'
import { query } from './sql.js'

/** `show <tenant_id>` over the simple query protocol: the effective tenant config, key by key, as text. */
export async function showTenantConfig(port: number, tenantId: string): Promise<Record<string, string>> {
  const rows = await query<Record<string, string>>(
    `postgresql://postgres@127.0.0.1:${port}/postgres`,
    `show ${tenantId}`,
  )
  if (rows.length !== 1) throw new Error(`show ${tenantId} returned ${rows.length} rows, expected 1`)
  return rows[0]
}

/** Extracts the page service's fullbackup of a timeline (at `lsn`, or the latest) into `dir`. */
export async function fullbackupToDir(
  pgPort: number,
  tenantId: string,
  timelineId: string,
  dir: string,
  lsn?: string,
): Promise<void> {
  const c = await PgClient.connect({ host: '127.0.0.1', port: pgPort, user: 'postgres' })
  try {
    await extractTar(c.copyOutBytes(`fullbackup ${tenantId} ${timelineId}${lsn ? ` ${lsn}` : ''}`), dir)
  } finally {
    await c.close()
  }
}

/**
 * A stock Postgres started from the page service's fullbackup of a timeline (at `lsn`, or the latest),
 * running with wal_consistency_checking = all as every zenith compute does, plus `settings`.
 */
export function computeFromPageService(
  pgPort: number,
  tenantId: string,
  timelineId: string,
  opts: { lsn?: string; settings?: Record<string, SettingValue>; name?: string } = {},
): Promise<PgCluster> {
  return startPostgres({
    name: opts.name ?? 'ps-compute',
    settings: { wal_consistency_checking: 'all', ...opts.settings },
    populate: (datadir) => fullbackupToDir(pgPort, tenantId, timelineId, datadir, opts.lsn),
  })
}

/** GetPage of each of `blknos` at `lsn` over one pagestream_v3 session; a refused request throws. */
export async function getPages(
  pgPort: number,
  tenantId: string,
  timelineId: string,
  rel: RelTagWire,
  blknos: readonly number[],
  lsn: Lsn,
): Promise<Buffer[]> {
  const c = await PgClient.connect({ host: '127.0.0.1', port: pgPort, user: 'postgres' })
  try {
    const stream = await c.copyBoth(`pagestream_v3 ${tenantId} ${timelineId}`)
    const replies = stream[Symbol.asyncIterator]()
    const pages: Buffer[] = []
    for (const [i, blkno] of blknos.entries()) {
      const req: PagestreamRequest = {
        kind: 'getpage',
        rel,
        blkno,
        reqid: BigInt(i),
        requestLsn: lsn,
        notModifiedSince: lsn,
      }
      stream.send(encodeRequest(req, 3))
      const { value } = await replies.next()
      const res = decodeResponse(value as Buffer, req, 3)
      if (res.kind !== 'getpage') throw new Error(`GetPage of block ${blkno} answered ${JSON.stringify(res)}`)
      pages.push(res.page)
    }
    stream.end()
    return pages
  } finally {
    await c.close()
  }
}
