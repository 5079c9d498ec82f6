/**
 * The management API on port 9898, with Neon's paths and JSON field names (docs/http-api.md). Bad ids,
 * LSNs or bodies are 400 with `{"msg": ...}`, unknown tenants and timelines 404, conflicts 409.
 */
import type { Server } from 'node:http'
import { checkGeneration } from '../engine/remote-layout.js'
import { overridesFromText, patchFromText, TENANT_CONFIG_KEYS } from '../engine/tenant-config.js'
import { generateId, parseId } from '../lib/ids.js'
import { formatLsn, parseLsn } from '../postgres/lsn.js'
import { HttpError, objectBody, Router, routerServer } from '../protocol/http-router.js'
import {
  type CheckpointResult,
  type CompactResult,
  type GcResult,
  LOCATION_CONFIG_MODES,
  type LocationConfigMode,
  type StatusResponse,
  type TenantDetail,
} from './api-types.js'
import type { Pageserver } from './pageserver.js'
import type { SafekeeperAddr } from './safekeeper-candidates.js'
import { layerMapInfo, tenantConfigInfo, tenantInfo, timelineInfo, walContinuation } from './timeline-info.js'
import type { WalSource } from './wal-receiver.js'

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string, got ${JSON.stringify(v)}`)
  return v
}

function optionalLsn(body: Record<string, unknown>, key: string): number | undefined {
  const v = optionalString(body, key)
  return v === undefined ? undefined : parseLsn(v)
}

/** `generation` of a body: one the control plane issued (1 and up), or absent. */
function optionalGeneration(body: Record<string, unknown>): number | undefined {
  const g = body.generation
  if (g === undefined || g === null) return undefined
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 1 || checkGeneration(g) !== null)
    throw new HttpError(400, `generation must be an integer in 1 .. 4294967295, got ${JSON.stringify(g)}`)
  return g
}

/** The body without the fields that name things, leaving the tenant config fields (checked by the engine). */
function withoutFields(body: Record<string, unknown>, skip: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => !skip.includes(k)))
}

export function createHttpApi(ps: Pageserver): Server {
  const r = new Router()
  const tenantOf = (params: Record<string, string>) => ps.tenant(params.tenant_id)
  const timelineOf = (params: Record<string, string>) => ps.timeline(params.tenant_id, params.timeline_id)

  r.on('GET', '/v1/status', () => ({
    json: { id: ps.config.controlPlane?.nodeId ?? 1 } satisfies StatusResponse,
  }))
  r.on('GET', '/metrics', () => ({ text: ps.metrics.render(), contentType: 'text/plain; version=0.0.4' }))

  r.on('GET', '/v1/tenant', () => ({ json: ps.repo.tenants().map(tenantInfo) }))
  r.on('POST', '/v1/tenant', ({ body }) => {
    const b = objectBody(body)
    const id = parseId(optionalString(b, 'new_tenant_id') ?? generateId(), 'tenant')
    const generation = optionalGeneration(b)
    const t = ps.createTenant({
      tenantId: id,
      config: overridesFromText(withoutFields(b, ['new_tenant_id', 'generation'])),
      generation,
    })
    return { status: 201, json: t.tenantId }
  })

  // Neon's declarative attach/detach; the answer is the tenant as it is here now (null: not here).
  r.on('PUT', '/v1/tenant/:tenant_id/location_config', async ({ params, body, query }) => {
    const b = objectBody(body, false)
    const mode = b.mode
    if (typeof mode !== 'string' || !LOCATION_CONFIG_MODES.includes(mode as LocationConfigMode))
      throw new HttpError(
        400,
        `mode must be one of ${LOCATION_CONFIG_MODES.join(', ')}, got ${JSON.stringify(mode)}`,
      )
    const generation = optionalGeneration(b)
    const conf = b.tenant_conf ?? undefined
    if (conf !== undefined && (typeof conf !== 'object' || Array.isArray(conf)))
      throw new HttpError(400, 'tenant_conf must be an object of tenant config fields')
    const flush = query.get('flush_ms')
    const flushMs = flush === null ? undefined : Number(flush)
    if (flushMs !== undefined && !(Number.isSafeInteger(flushMs) && flushMs >= 0))
      throw new HttpError(
        400,
        `flush_ms must be a whole number of milliseconds, got ${JSON.stringify(flush)}`,
      )
    const t = await ps.locationConfig(
      params.tenant_id,
      {
        mode: mode as LocationConfigMode,
        generation,
        tenantConf: conf === undefined ? undefined : overridesFromText(conf),
      },
      flushMs,
    )
    return { json: t === null ? null : tenantInfo(t) }
  })

  // Neon's form names the tenant in the body; ours in the path (a tenant_id in the body must then agree).
  // PUT replaces the overrides, PATCH merges (null removes one).
  const setConfig = (pathTenant: string | undefined, body: unknown, replace: boolean) => {
    const b = objectBody(body, false)
    const inBody = optionalString(b, 'tenant_id')
    if (pathTenant === undefined && inBody === undefined)
      throw new HttpError(400, 'tenant_id is missing from the body')
    if (
      pathTenant !== undefined &&
      inBody !== undefined &&
      parseId(inBody, 'tenant') !== parseId(pathTenant, 'tenant')
    )
      throw new HttpError(400, `tenant_id ${inBody} in the body differs from ${pathTenant} in the path`)
    const t = ps.tenant(pathTenant ?? inBody!)
    const fields = withoutFields(b, ['tenant_id'])
    const patch: Record<string, number | null> = replace
      ? Object.fromEntries(TENANT_CONFIG_KEYS.map((k) => [k, null]))
      : {}
    Object.assign(patch, patchFromText(fields))
    t.updateConfig(patch)
    ps.log('info', 'tenant config updated', { tenantId: t.tenantId, ...fields })
    return { json: tenantConfigInfo(t) }
  }
  for (const [method, replace] of [
    ['PUT', true],
    ['PATCH', false],
  ] as const) {
    r.on(method, '/v1/tenant/config', ({ body }) => setConfig(undefined, body, replace))
    r.on(method, '/v1/tenant/:tenant_id/config', ({ params, body }) =>
      setConfig(params.tenant_id, body, replace),
    )
  }
  r.on('GET', '/v1/tenant/:tenant_id/config', ({ params }) => ({ json: tenantConfigInfo(tenantOf(params)) }))

  r.on('GET', '/v1/tenant/:tenant_id', ({ params }) => {
    const t = tenantOf(params)
    return {
      json: { ...tenantInfo(t), timelines: t.timelines().map((tl) => tl.timelineId) } satisfies TenantDetail,
    }
  })
  r.on('GET', '/v1/tenant/:tenant_id/timeline', ({ params }) => ({
    json: tenantOf(params)
      .timelines()
      .map((tl) => timelineInfo(ps, tl)),
  }))
  r.on('POST', '/v1/tenant/:tenant_id/timeline', async ({ params, body }) => {
    const t = tenantOf(params)
    const b = objectBody(body, false)
    const newTimelineId = optionalString(b, 'new_timeline_id')
    if (newTimelineId === undefined) throw new HttpError(400, 'new_timeline_id is missing from the body')
    const pgVersion = b.pg_version
    if (pgVersion !== undefined && pgVersion !== null && pgVersion !== 15)
      throw new HttpError(
        400,
        `pg_version ${JSON.stringify(pgVersion)} is not supported; zenith runs PostgreSQL 15`,
      )
    const tl = await ps.createTimeline(t, {
      newTimelineId,
      ancestorTimelineId: optionalString(b, 'ancestor_timeline_id'),
      ancestorStartLsn: optionalLsn(b, 'ancestor_start_lsn'),
    })
    return { status: 201, json: timelineInfo(ps, tl) }
  })
  r.on('GET', '/v1/tenant/:tenant_id/timeline/:timeline_id', ({ params }) => ({
    json: timelineInfo(ps, timelineOf(params)),
  }))
  r.on('GET', '/v1/tenant/:tenant_id/timeline/:timeline_id/wal_continuation', ({ params }) => {
    const tl = timelineOf(params)
    const c = walContinuation(tl)
    if (!c) throw new HttpError(409, `timeline ${tl.timelineId} holds no cluster yet: its import is not done`)
    return { json: c }
  })
  r.on('DELETE', '/v1/tenant/:tenant_id/timeline/:timeline_id', async ({ params }) => {
    await ps.deleteTimeline(tenantOf(params), params.timeline_id)
    return { json: {} }
  })
  r.on('PUT', '/v1/tenant/:tenant_id/timeline/:timeline_id/do_gc', async ({ params, body }) => {
    const t = tenantOf(params)
    const tl = t.timeline(params.timeline_id)
    const b = objectBody(body)
    const h = b.gc_horizon
    if (h !== undefined && h !== null && (typeof h !== 'number' || !Number.isSafeInteger(h) || h < 0))
      throw new HttpError(
        400,
        `gc_horizon must be a non-negative integer number of bytes, got ${JSON.stringify(h)}`,
      )
    const res = await t.gc(tl, { gcHorizon: typeof h === 'number' ? h : undefined })
    return {
      json: {
        layers_total: res.layersTotal,
        layers_removed: res.removed,
        layers_needed_by_cutoff: res.neededByCutoff,
        layers_needed_by_branches: res.neededByBranches,
        cutoff: formatLsn(res.cutoff),
        elapsed: res.elapsedMs,
      } satisfies GcResult,
    }
  })
  r.on('PUT', '/v1/tenant/:tenant_id/timeline/:timeline_id/compact', async ({ params, query }) => {
    const t = tenantOf(params)
    const force =
      query.get('force_l0_compaction') === 'true' || query.get('force_image_layer_creation') === 'true'
    const { compaction, images } = await t.compact(t.timeline(params.timeline_id), force)
    return {
      json: {
        compaction: compaction && {
          inputs: compaction.inputs,
          outputs: compaction.outputs,
          entries: compaction.entries,
          elapsed: compaction.elapsedMs,
        },
        image_layers: {
          lsn: formatLsn(images.lsn),
          partitions: images.partitions,
          created: images.created,
          keys: images.keys,
        },
      } satisfies CompactResult,
    }
  })
  r.on('PUT', '/v1/tenant/:tenant_id/timeline/:timeline_id/checkpoint', async ({ params, query }) => {
    const t = tenantOf(params)
    const tl = t.timeline(params.timeline_id)
    await tl.checkpoint()
    if (query.get('compact') !== 'false') await t.compact(tl)
    return {
      json: { disk_consistent_lsn: timelineInfo(ps, tl).disk_consistent_lsn } satisfies CheckpointResult,
    }
  })
  r.on('GET', '/v1/tenant/:tenant_id/timeline/:timeline_id/layer', ({ params }) => ({
    json: layerMapInfo(timelineOf(params)),
  }))
  // zenith's own: where the timeline's WAL comes from — a compute, or its safekeepers (Neon learns the
  // safekeepers from its broker).
  r.on('PUT', '/v1/tenant/:tenant_id/timeline/:timeline_id/wal_receiver', async ({ params, body }) => {
    const tl = timelineOf(params)
    const b = objectBody(body, false)
    let source: WalSource | null
    if (b.safekeepers !== undefined && b.safekeepers !== null) {
      if (b.wal_source_connstr !== undefined && b.wal_source_connstr !== null)
        throw new HttpError(400, 'name either wal_source_connstr or safekeepers, not both')
      source = { safekeepers: b.safekeepers as SafekeeperAddr[] }
    } else {
      const connstr = optionalString(b, 'wal_source_connstr')
      source = connstr === undefined ? null : { connstr }
    }
    await ps.walReceivers.set(tl.tenantId, tl.timelineId, source)
    return { json: timelineInfo(ps, tl) }
  })

  return routerServer(r, ps.log)
}
