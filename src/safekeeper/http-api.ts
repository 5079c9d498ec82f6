/**
 * A safekeeper's management API on 127.0.0.1:7676+N (docs/safekeeper.md): status, timeline create, list
 * and detail with Neon's field names (plus zenith's own: peers, peer recovery), zenith's routes of the
 * election and of a term's compute, a digest of the WAL held (to compare safekeepers byte for byte), and
 * Prometheus metrics.
 */
import { createHash } from 'node:crypto'
import type { Server } from 'node:http'
import { formatHostPort } from '../lib/host-port.js'
import { parseId } from '../lib/ids.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { HttpError, objectBody, Router, routerServer } from '../protocol/http-router.js'
import type { SkDigest, SkStatusResponse, SkTermEntry, SkTimelineInfo, SkVoteResponse } from './api-types.js'
import type { TermEntry } from './control-file.js'
import type { Safekeeper } from './safekeeper.js'
import type { SkTimeline } from './timeline.js'

/** Bytes read per step while hashing, so a digest of gigabytes does not hold them all at once. */
const DIGEST_STEP = 1024 * 1024

function stringField(body: Record<string, unknown>, key: string): string {
  const v = body[key]
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string, got ${JSON.stringify(v)}`)
  return v
}

function intField(body: Record<string, unknown>, key: string, dflt: number): number {
  const v = body[key] ?? dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new HttpError(400, `${key} must be a positive integer, got ${JSON.stringify(v)}`)
  return v
}

function termHistoryField(body: Record<string, unknown>): TermEntry[] | undefined {
  const v = body.term_history
  if (v === undefined) return undefined
  if (!Array.isArray(v)) throw new HttpError(400, `term_history must be a list, got ${JSON.stringify(v)}`)
  return v.map((e: unknown, i) => {
    const entry = e as Partial<SkTermEntry> | null
    if (typeof entry?.term !== 'number' || typeof entry.lsn !== 'string')
      throw new HttpError(400, `term_history[${i}] must be {term, lsn}, got ${JSON.stringify(e)}`)
    return { term: entry.term, lsn: parseLsn(entry.lsn) }
  })
}

export function timelineInfo(sk: Safekeeper, tl: SkTimeline): SkTimelineInfo {
  const s = tl.state
  const acceptor = tl.acceptorStatus
  const recovery = tl.recoveryStatus
  const fb = s.pageserverFeedback
  const now = Date.now()
  return {
    safekeeper_id: sk.config.id,
    safekeeper_connstr: formatHostPort(sk.config.listenPgAddr),
    tenant_id: s.tenantId,
    timeline_id: s.timelineId,
    system_id: s.systemId,
    pg_timeline: s.pgTimeline,
    wal_seg_size: s.walSegSize,
    acceptor_state: {
      term: s.term,
      epoch: tl.epoch,
      term_history: s.termHistory.map((e) => ({ term: e.term, lsn: formatLsn(e.lsn) })),
    },
    flush_lsn: formatLsn(tl.flushLsn),
    commit_lsn: formatLsn(tl.commitLsn),
    compute_end_lsn: tl.computeEnd.end === null ? null : formatLsn(tl.computeEnd.end),
    lag_seconds: {
      flush: tl.computeEnd.lagSeconds(tl.flushLsn),
      commit: tl.computeEnd.lagSeconds(tl.commitLsn),
    },
    truncate_lsn: formatLsn(s.truncateLsn),
    // No WAL backup to remote storage yet: what is committed here is as far as backup goes.
    backup_lsn: formatLsn(tl.commitLsn),
    peer_horizon_lsn: formatLsn(s.truncateLsn),
    remote_consistent_lsn: formatLsn(s.remoteConsistentLsn),
    timeline_start_lsn: formatLsn(s.timelineStartLsn),
    local_start_lsn: formatLsn(s.localStartLsn),
    walreceivers: acceptor
      ? [
          {
            connstr: acceptor.connstr,
            term: acceptor.term,
            status: acceptor.state,
            last_error: acceptor.lastError,
          },
        ]
      : [],
    walsenders: [...tl.walsenders].map((w) => ({
      application_name: w.applicationName,
      start_lsn: formatLsn(w.startLsn),
      sent_lsn: formatLsn(w.sentLsn),
    })),
    peers: [...tl.peerReports].map(([addr, p]) => ({
      addr,
      flush_lsn: formatLsn(p.flushLsn),
      term: p.term,
      last_seen_ms_ago: now - p.seenAt,
    })),
    recovery: recovery && {
      from: recovery.from,
      state: recovery.state,
      start_lsn: formatLsn(recovery.startLsn),
      until_lsn: formatLsn(recovery.untilLsn),
      last_error: recovery.lastError,
    },
    pageserver_feedback: fb && {
      last_received_lsn: formatLsn(fb.lastReceivedLsn),
      disk_consistent_lsn: formatLsn(fb.diskConsistentLsn),
      remote_consistent_lsn: formatLsn(fb.remoteConsistentLsn),
      current_logical_size: fb.currentLogicalSize,
      reply_time_us: fb.replyTimeUs,
    },
  }
}

function digest(tl: SkTimeline, from: number, until: number): SkDigest {
  if (from < tl.state.localStartLsn || until > tl.flushLsn || from > until) {
    throw new HttpError(
      400,
      `digest range ${formatLsn(from)}..${formatLsn(until)} is not within the WAL held, ${formatLsn(tl.state.localStartLsn)}..${formatLsn(tl.flushLsn)}`,
    )
  }
  const h = createHash('sha256')
  for (let lsn = from; lsn < until; ) {
    const chunk = tl.store.read(lsn, Math.min(DIGEST_STEP, until - lsn))
    h.update(chunk)
    lsn += chunk.length
  }
  return { from_lsn: formatLsn(from), until_lsn: formatLsn(until), sha256: h.digest('hex') }
}

export function createSafekeeperHttpApi(sk: Safekeeper): Server {
  const r = new Router()
  const timelineOf = (p: Record<string, string>) => sk.timeline(p.tenant_id, p.timeline_id)

  r.on('GET', '/v1/status', () => ({ json: { id: sk.config.id } satisfies SkStatusResponse }))
  r.on('GET', '/metrics', () => ({ text: sk.renderMetrics(), contentType: 'text/plain; version=0.0.4' }))
  r.on('GET', '/v1/tenant/timeline', () => ({ json: sk.listTimelines().map((tl) => timelineInfo(sk, tl)) }))
  r.on('POST', '/v1/tenant/timeline', async ({ body }) => {
    const b = objectBody(body, false)
    const systemId = stringField(b, 'system_id')
    if (!/^\d+$/.test(systemId))
      throw new HttpError(400, `system_id must be a decimal integer, got "${systemId}"`)
    const tl = await sk.createTimeline({
      tenantId: parseId(stringField(b, 'tenant_id'), 'tenant'),
      timelineId: parseId(stringField(b, 'timeline_id'), 'timeline'),
      systemId,
      startLsn: parseLsn(stringField(b, 'start_lsn')),
      pgTimeline: intField(b, 'pg_timeline', 1),
      walSegSize: intField(b, 'wal_seg_size', 16 * 1024 * 1024),
    })
    return { status: 201, json: timelineInfo(sk, tl) }
  })
  r.on('GET', '/v1/tenant/:tenant_id/timeline/:timeline_id', ({ params }) => ({
    json: timelineInfo(sk, timelineOf(params)),
  }))
  r.on('PUT', '/v1/tenant/:tenant_id/timeline/:timeline_id/compute', async ({ params, body }) => {
    const tl = timelineOf(params)
    const b = objectBody(body, false)
    const term = b.term
    if (typeof term !== 'number')
      throw new HttpError(400, `term must be a number, got ${JSON.stringify(term)}`)
    await tl.setCompute(stringField(b, 'connstr'), term, termHistoryField(b))
    return { json: timelineInfo(sk, tl) }
  })
  r.on('POST', '/v1/tenant/:tenant_id/timeline/:timeline_id/vote', async ({ params, body }) => {
    const term = objectBody(body, false).term
    if (typeof term !== 'number')
      throw new HttpError(400, `term must be a number, got ${JSON.stringify(term)}`)
    const tl = timelineOf(params)
    const v = await tl.vote(term)
    return {
      json: {
        vote_given: v.voteGiven,
        term: v.term,
        epoch: v.epoch,
        flush_lsn: formatLsn(v.flushLsn),
        term_history: tl.state.termHistory.map((e) => ({ term: e.term, lsn: formatLsn(e.lsn) })),
      } satisfies SkVoteResponse,
    }
  })
  r.on('POST', '/v1/tenant/:tenant_id/timeline/:timeline_id/elected', async ({ params, body }) => {
    const b = objectBody(body, false)
    if (typeof b.term !== 'number')
      throw new HttpError(400, `term must be a number, got ${JSON.stringify(b.term)}`)
    const history = termHistoryField(b)
    if (history === undefined) throw new HttpError(400, 'term_history is required')
    const tl = timelineOf(params)
    await tl.adoptTerm(b.term, history)
    return { json: timelineInfo(sk, tl) }
  })
  r.on('GET', '/v1/tenant/:tenant_id/timeline/:timeline_id/digest', ({ params, query }) => {
    const tl = timelineOf(params)
    const from = query.get('from_lsn')
    const until = query.get('until_lsn')
    return {
      json: digest(
        tl,
        from === null ? tl.state.localStartLsn : parseLsn(from),
        until === null ? tl.flushLsn : parseLsn(until),
      ),
    }
  })

  return routerServer(r, sk.log)
}
