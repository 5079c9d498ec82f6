/**
 * The page service on port 64000: libpq's simple query protocol with Neon's commands.
 *
 *   show <tenant_id>                          the tenant's effective config, one row
 *   pagestream[_v2|_v3] <tenant> <timeline>   CopyBoth: pagestream requests in, responses out
 *   basebackup <tenant> <timeline> [lsn|latest]
 *   fullbackup <tenant> <timeline> [lsn [prev_lsn]]   a datadir as a tar stream (CopyOut)
 *   set ...                                   accepted and ignored (libpq tools send it)
 *
 * zenith's basebackups are always full (every relation file is in the tar), so both commands stream the
 * same archive. Errors go back as ErrorResponse and the session stays usable.
 */

import type net from 'node:net'
import { withLocalLayers } from '../engine/layer-download.js'
import { configToJson, TENANT_CONFIG_KEYS } from '../engine/tenant-config.js'
import type { Timeline } from '../engine/timeline.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { basebackup } from '../pgdata/basebackup.js'
import { SlruKind } from '../pgdata/datadir-mapping.js'
import { DatadirReader } from '../pgdata/datadir-reader.js'
import { BLCKSZ } from '../postgres/data-page.js'
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import { DEFAULTTABLESPACE_OID } from '../postgres/relfile.js'
import { TarWriter } from '../postgres/tar.js'
import { createCommandServer } from '../protocol/command-server.js'
import type { PgServerConnection } from '../protocol/server.js'
import type { Pageserver } from './pageserver.js'
import {
  decodeRequest,
  encodeResponse,
  LATEST_LSN,
  type PagestreamRequest,
  type PagestreamResult,
  type PagestreamVersion,
} from './pagestream.js'

/** A request the client got wrong: answered with an ErrorResponse, the session goes on. */
class CommandError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'CommandError'
}

export function createPageService(ps: Pageserver): net.Server {
  return createCommandServer({
    name: 'the zenith page service',
    run: (conn, sql) => runCommand(ps, conn, sql),
    onBug: (e) => ps.log('error', 'page service command failed: this is a bug', { error: e.stack }),
    onConnectionError: (err) => ps.log('warn', 'page service connection failed', { error: err.message }),
  })
}

async function runCommand(ps: Pageserver, conn: PgServerConnection, sql: string): Promise<void> {
  const words = sql.trim().replace(/;$/, '').split(/\s+/)
  const cmd = words[0].toLowerCase()
  const args = words.slice(1)
  switch (cmd) {
    case '':
      conn.emptyQueryResponse()
      return
    case 'set':
      conn.commandComplete('SET')
      return
    case 'show':
      return show(ps, conn, args)
    case 'pagestream':
    case 'pagestream_v2':
      return pagestream(ps, conn, args, 2)
    case 'pagestream_v3':
      return pagestream(ps, conn, args, 3)
    case 'basebackup':
    case 'fullbackup':
      return backup(ps, conn, cmd, args)
    default:
      throw new CommandError(
        `unsupported command "${words[0]}"; the page service knows show, pagestream, pagestream_v2, pagestream_v3, basebackup, fullbackup and set`,
      )
  }
}

function expectArgs(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) throw new CommandError(`usage: ${usage}`)
}

function show(ps: Pageserver, conn: PgServerConnection, args: string[]): void {
  expectArgs(args, 1, 1, 'show <tenant_id>')
  const cfg = configToJson(ps.tenant(args[0]).config)
  conn.rowDescription(TENANT_CONFIG_KEYS.map((k) => ({ name: k })))
  conn.dataRow(TENANT_CONFIG_KEYS.map((k) => String(cfg[k])))
  conn.commandComplete('SELECT 1')
}

async function backup(ps: Pageserver, conn: PgServerConnection, cmd: string, args: string[]): Promise<void> {
  const usage =
    cmd === 'basebackup'
      ? 'basebackup <tenant_id> <timeline_id> [<lsn>|latest]'
      : 'fullbackup <tenant_id> <timeline_id> [<lsn> [<prev_lsn>]]'
  expectArgs(args, 2, cmd === 'basebackup' ? 3 : 4, usage)
  const tl = ps.timeline(args[0], args[1])
  const asked = args[2] === undefined || args[2] === 'latest' ? undefined : parseLsn(args[2])
  const lsn = await tl.readLsn({ lsn: asked, what: cmd, timeoutMs: ps.config.waitLsnTimeoutMs })
  ps.metrics.basebackups.inc()
  const started = performance.now()
  conn.copyOutResponse()
  const tar = new TarWriter(async (chunk) => {
    conn.copyData(chunk)
    await conn.drain()
  })
  const res = await basebackup(tl, tar, { lsn })
  conn.copyDone()
  conn.commandComplete('COPY')
  ps.log('info', `${cmd} sent`, {
    tenantId: tl.tenantId,
    timelineId: tl.timelineId,
    lsn: formatLsn(res.lsn),
    bytes: tar.bytesWritten,
    ms: Math.round(performance.now() - started),
  })
}

async function pagestream(
  ps: Pageserver,
  conn: PgServerConnection,
  args: string[],
  version: PagestreamVersion,
): Promise<void> {
  expectArgs(args, 2, 2, `pagestream${version === 3 ? '_v3' : ''} <tenant_id> <timeline_id>`)
  const tl = ps.timeline(args[0], args[1])
  conn.copyBothResponse()
  for (;;) {
    const msg = await conn.next()
    if (!msg || msg.type === 'terminate') {
      conn.close()
      return
    }
    if (msg.type === 'copyDone' || msg.type === 'copyFail') break
    if (msg.type !== 'copyData') throw new CommandError(`unexpected ${msg.type} message inside pagestream`)
    const req = decodeRequest(msg.data, version)
    let result: PagestreamResult
    try {
      result = await answer(ps, tl, req)
    } catch (err) {
      result = { kind: 'error', message: (err as Error).message }
    }
    conn.copyData(encodeResponse(req, result, version))
    await conn.drain()
  }
  conn.copyDone()
  conn.commandComplete('COPY')
}

/**
 * The LSN a request reads at, as Neon decides it: a request newer than what has arrived waits for
 * not_modified_since (the last change the compute knows of), then reads at the newest LSN it may.
 */
function effectiveLsn(ps: Pageserver, tl: Timeline, req: PagestreamRequest): Promise<Lsn> {
  if (req.requestLsn === 0) throw new CommandError('request_lsn 0 is invalid')
  if (req.requestLsn < req.notModifiedSince) {
    throw new CommandError(
      `request_lsn ${formatLsn(req.requestLsn)} is below not_modified_since ${formatLsn(req.notModifiedSince)}`,
    )
  }
  return tl.readLsn({
    lsn: req.requestLsn === LATEST_LSN ? undefined : req.requestLsn,
    needed: req.notModifiedSince === LATEST_LSN ? undefined : req.notModifiedSince,
    timeoutMs: ps.config.waitLsnTimeoutMs,
  })
}

async function answer(ps: Pageserver, tl: Timeline, req: PagestreamRequest): Promise<PagestreamResult> {
  const dd = new DatadirReader(tl, await effectiveLsn(ps, tl, req))
  ps.metrics.smgrRequests.inc(1, { kind: req.kind })
  const t = performance.now()
  // A read that reaches a layer only remote storage holds downloads it and runs again.
  const result = await withLocalLayers(() => read(dd, req))
  if (req.kind === 'getpage') {
    ps.metrics.getPageRequests.inc()
    ps.metrics.getPageSeconds.observe((performance.now() - t) / 1000)
  }
  return result
}

function read(dd: DatadirReader, req: PagestreamRequest): PagestreamResult {
  switch (req.kind) {
    case 'exists':
      return { kind: 'exists', exists: dd.relExists(req.rel) }
    case 'nblocks': {
      const nblocks = dd.relSize(req.rel)
      if (nblocks === null)
        throw new ZenithError(`relation ${relName(req.rel)} does not exist at ${formatLsn(dd.lsn)}`, {
          kind: 'not_found',
        })
      return { kind: 'nblocks', nblocks }
    }
    case 'getpage':
      return { kind: 'getpage', page: dd.page(req.rel, req.blkno) }
    case 'dbsize':
      return { kind: 'dbsize', bytes: dd.dbSize(DEFAULTTABLESPACE_OID, req.dbNode) }
    case 'slru': {
      if (!(req.slruKind in SlruKind))
        throw new CommandError(
          `unknown SLRU kind ${req.slruKind}; 0 = pg_xact, 1 = multixact members, 2 = multixact offsets, 3 = pg_commit_ts`,
        )
      const data = dd.slruSegment(req.slruKind as SlruKind, req.segno)
      if (!data)
        throw new ZenithError(
          `SLRU segment ${req.segno} of kind ${req.slruKind} does not exist at ${formatLsn(dd.lsn)}`,
          { kind: 'not_found' },
        )
      return { kind: 'slru', nblocks: data.length / BLCKSZ, data }
    }
  }
}

function relName(r: { spcNode: number; dbNode: number; relNode: number; forkNum: number }): string {
  return `${r.spcNode}/${r.dbNode}/${r.relNode} fork ${r.forkNum}`
}
