/** The engine's state in the JSON shapes of the management API (api-types.ts). */
import type { Tenant } from '../engine/tenant.js'
import { configToJson } from '../engine/tenant-config.js'
import type { Timeline } from '../engine/timeline.js'
import { controlFileOf } from '../pgdata/datadir-keyspace.js'
import { CHECKPOINT_KEY } from '../pgdata/datadir-mapping.js'
import { decodeCheckPoint } from '../postgres/checkpoint.js'
import { formatLsn } from '../postgres/lsn.js'
import type {
  HistoricLayerInfo,
  InMemoryLayerInfo,
  LayerMapInfo,
  TenantConfigInfo,
  TenantInfo,
  TimelineInfo,
  WalContinuation,
} from './api-types.js'
import type { Pageserver } from './pageserver.js'

export function timelineInfo(ps: Pageserver, tl: Timeline): TimelineInfo {
  const md = tl.metadata
  const rx = ps.walReceivers.status(tl.tenantId, tl.timelineId)
  const size = ps.logicalSize(tl)
  return {
    tenant_id: tl.tenantId,
    timeline_id: tl.timelineId,
    ancestor_timeline_id: md.ancestorTimelineId,
    ancestor_lsn: md.ancestorTimelineId ? formatLsn(md.ancestorLsn) : null,
    last_record_lsn: formatLsn(tl.lastRecordLsn),
    prev_record_lsn: tl.prevRecordLsn === null ? null : formatLsn(tl.prevRecordLsn),
    disk_consistent_lsn: formatLsn(tl.diskConsistentLsn),
    // Both are the confirmed one (Neon's first is what was uploaded, before the generation check).
    remote_consistent_lsn: formatLsn(tl.remoteConsistentLsn),
    remote_consistent_lsn_visible: formatLsn(tl.remoteConsistentLsn),
    latest_gc_cutoff_lsn: formatLsn(tl.latestGcCutoffLsn),
    applied_gc_cutoff_lsn: formatLsn(tl.latestGcCutoffLsn),
    initdb_lsn: formatLsn(md.initLsn),
    current_logical_size: size.bytes,
    current_logical_size_is_accurate: size.accurate,
    pg_version: 15,
    state: 'Active',
    wal_source_connstr: rx?.connstr ?? null,
    last_received_msg_lsn: rx?.lastReceivedLsn === undefined ? null : formatLsn(rx.lastReceivedLsn),
    last_received_msg_ts: rx?.lastReceivedTsUs ?? null,
    walreceiver_status: rx?.status ?? 'inactive',
    // zenith's own: why the receiver is not streaming (the compute is down, refuses, or sends bad WAL;
    // when broken, it lacks the WAL the timeline needs).
    walreceiver_error: rx?.lastError ?? null,
    wal_source_end_lsn: rx?.sourceEnd.end == null ? null : formatLsn(rx.sourceEnd.end),
    // How long ago the source was at each LSN, as heard here.
    lag_seconds: rx
      ? {
          last_record: rx.sourceEnd.lagSeconds(tl.lastRecordLsn),
          disk_consistent: rx.sourceEnd.lagSeconds(tl.diskConsistentLsn),
          remote_consistent: rx.sourceEnd.lagSeconds(tl.remoteConsistentLsn),
        }
      : null,
    // zenith's own, with safekeepers: the one streamed from, what each said, and why the last switch.
    ...(rx?.candidates
      ? {
          walreceiver_safekeeper: rx.safekeeperId ?? null,
          walreceiver_candidates: rx.candidates,
          walreceiver_last_switch: rx.lastSwitch
            ? { reason: rx.lastSwitch.reason, from: rx.lastSwitch.from, at_ms: rx.lastSwitch.atMs }
            : null,
        }
      : {}),
  }
}

/** Null for a timeline that holds no cluster yet (initdb's import has not landed). */
export function walContinuation(tl: Timeline): WalContinuation | null {
  const at = tl.lastRecordLsn
  const prev = tl.prevRecordLsn
  const control = controlFileOf((key) => tl.get(key, at))
  const cp = tl.get(CHECKPOINT_KEY, at)
  if (!control || !cp) return null
  const checkPoint = decodeCheckPoint(cp)
  return {
    last_record_lsn: formatLsn(at),
    prev_record_lsn: prev === null ? null : formatLsn(prev),
    system_id: String(control.systemIdentifier),
    wal_segment_size: control.xlogSegSize,
    pg_timeline: checkPoint.thisTimeLineId,
    next_xid: checkPoint.nextXid,
    next_oid: checkPoint.nextOid,
    data_checksums: control.dataChecksumVersion !== 0,
  }
}

export function tenantInfo(t: Tenant): TenantInfo {
  const physical = t
    .timelines()
    .reduce((n, tl) => n + tl.layerInfo().reduce((m, l) => m + (l.file ? l.bytes : 0), 0), 0)
  return {
    id: t.tenantId,
    state: { slug: 'Active' },
    current_physical_size: physical,
    attachment_status: { slug: 'attached' },
    generation: t.generation,
    mode: t.mode,
  }
}

export function tenantConfigInfo(t: Tenant): TenantConfigInfo {
  return {
    tenant_specific_overrides: configToJson(t.configOverrides),
    effective_config: configToJson(t.config),
  }
}

export function layerMapInfo(tl: Timeline): LayerMapInfo {
  // A layer is remote once an uploaded index lists it: only then can a pageserver get it back from there.
  const uploaded = tl.uploads?.uploadedIndex?.layers ?? {}
  const inMemory: InMemoryLayerInfo[] = []
  const historic: HistoricLayerInfo[] = []
  for (const l of tl.layerInfo()) {
    if (l.kind === 'open') inMemory.push({ kind: 'Open', lsn_start: formatLsn(l.lsnStart), bytes: l.bytes })
    else if (l.kind === 'frozen')
      inMemory.push({
        kind: 'Frozen',
        lsn_start: formatLsn(l.lsnStart),
        lsn_end: formatLsn(l.lsnEnd!),
        bytes: l.bytes,
      })
    else
      historic.push({
        kind: l.kind === 'delta' ? 'Delta' : 'Image',
        layer_file_name: l.file!,
        layer_file_size: l.bytes,
        key_start: l.keyStart.toString('hex').toUpperCase(),
        key_end: l.keyEnd.toString('hex').toUpperCase(),
        lsn_start: formatLsn(l.lsnStart),
        ...(l.kind === 'delta' ? { lsn_end: formatLsn(l.lsnEnd!), l0: l.l0 } : {}),
        remote: Object.hasOwn(uploaded, l.file!),
        local: l.local,
      })
  }
  return { in_memory_layers: inMemory, historic_layers: historic }
}
