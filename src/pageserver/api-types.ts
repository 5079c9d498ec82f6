/**
 * The JSON of the pageserver's management API, declared once: the server (http-api.ts, timeline-info.ts)
 * builds these shapes and the control plane's client (src/control/pageserver-client.ts) reads them.
 * Field names are Neon's; LSNs are strings as Postgres prints them ("0/16B3748"), sizes are bytes.
 * docs/http-api.md describes each route.
 */
import { LOCATION_MODES, type LocationMode } from '../engine/location.js'

export type { ErrorBody } from '../protocol/http-router.js'

export interface StatusResponse {
  id: number
}

export type TenantCreateRequest = { new_tenant_id?: string } & TenantConfigFields

/** Tenant config values as sent: numbers (bytes, counts, milliseconds) or text with units ("1 h"). */
export type TenantConfigFields = Record<string, number | string | null>

export interface TenantInfo {
  id: string
  state: { slug: 'Active' }
  current_physical_size: number
  attachment_status: { slug: 'attached' }
  generation: number
  /** zenith's own: the location's mode here (location_config). */
  mode: LocationMode
}

export interface TenantDetail extends TenantInfo {
  timelines: string[]
}

export interface TenantConfigInfo {
  tenant_specific_overrides: Record<string, number | string>
  effective_config: Record<string, number | string>
}

export interface TimelineCreateRequest {
  new_timeline_id: string
  ancestor_timeline_id?: string
  ancestor_start_lsn?: string
  pg_version?: number
}

/**
 * `inactive`: no WAL source is set. `broken`: the compute does not have the WAL the timeline needs next;
 * not retried until the source is set again (walreceiver_error says why).
 */
export type WalReceiverStatus = 'inactive' | 'connecting' | 'streaming' | 'backoff' | 'broken' | 'stopped'

/**
 * zenith's own: what WAL that goes on from a timeline's end must carry so that the pageserver takes it
 * and Postgres could have written it — read in one go at last_record_lsn (`zenith wal load --synthetic`).
 */
export interface WalContinuation {
  last_record_lsn: string
  /** The start of the record ending at last_record_lsn: the next record's prev-link; null when unknown. */
  prev_record_lsn: string | null
  /** pg_control's system identifier, in decimal as IDENTIFY_SYSTEM sends it. */
  system_id: string
  wal_segment_size: number
  /** The Postgres timeline (ThisTimeLineID) of the latest checkpoint. */
  pg_timeline: number
  /** FullTransactionId: epoch in the high 32 bits. */
  next_xid: number
  next_oid: number
  data_checksums: boolean
}

export interface TimelineInfo {
  tenant_id: string
  timeline_id: string
  ancestor_timeline_id: string | null
  ancestor_lsn: string | null
  last_record_lsn: string
  prev_record_lsn: string | null
  disk_consistent_lsn: string
  remote_consistent_lsn: string
  remote_consistent_lsn_visible: string
  latest_gc_cutoff_lsn: string
  applied_gc_cutoff_lsn: string
  initdb_lsn: string
  current_logical_size: number
  current_logical_size_is_accurate: boolean
  pg_version: 15
  state: 'Active'
  wal_source_connstr: string | null
  last_received_msg_lsn: string | null
  /** Microseconds since the Unix epoch. */
  last_received_msg_ts: number | null
  walreceiver_status: WalReceiverStatus
  /** zenith's own: why the WAL receiver is not streaming. */
  walreceiver_error: string | null
  /** zenith's own, when the WAL comes from safekeepers: the one streamed from, each candidate, the last switch. */
  walreceiver_safekeeper?: number | null
  walreceiver_candidates?: {
    id: number
    commit_lsn: string | null
    term: number | null
    alive: boolean
    cooldown_ms: number
  }[]
  walreceiver_last_switch?: {
    reason: 'NoKeepAlives' | 'NoWalTimeout' | 'LaggingWal'
    from: number
    at_ms: number
  } | null
  /**
   * zenith's own: the newest end of WAL the source reported (walEnd of its messages: a compute's flush
   * LSN, a safekeeper's commit_lsn); null before any, and without a WAL source.
   */
  wal_source_end_lsn: string | null
  /**
   * zenith's own: how many seconds ago the source's end was at each of the timeline's LSNs (LsnClock), to
   * the millisecond; each null until the source's end has been heard, and the whole null without a WAL
   * source.
   */
  lag_seconds: {
    last_record: number | null
    disk_consistent: number | null
    remote_consistent: number | null
  } | null
}

/** Neon's location modes; Detached is the tenant's absence. */
export const LOCATION_CONFIG_MODES = [...LOCATION_MODES, 'Detached'] as const
export type LocationConfigMode = (typeof LOCATION_CONFIG_MODES)[number]

/** `PUT /v1/tenant/:tenant_id/location_config`: `generation` is required in every attached mode. */
export interface LocationConfigRequest {
  mode: LocationConfigMode
  generation?: number
  /** Tenant config overrides for a tenant attached here anew (tenant config keys). */
  tenant_conf?: TenantConfigFields
}

/** zenith's own route: where a timeline's WAL comes from — a compute, or its safekeepers (null: nowhere). */
export type WalReceiverRequest =
  | { wal_source_connstr: string | null }
  | { safekeepers: { id: number; pg: string; http: string }[] }

export interface GcRequest {
  gc_horizon?: number | null
}

export interface GcResult {
  layers_total: number
  layers_removed: number
  layers_needed_by_cutoff: number
  layers_needed_by_branches: number
  cutoff: string
  /** Milliseconds. */
  elapsed: number
}

export interface CompactResult {
  compaction: { inputs: number; outputs: number; entries: number; elapsed: number } | null
  image_layers: { lsn: string; partitions: number; created: number; keys: number }
}

export interface CheckpointResult {
  disk_consistent_lsn: string
}

export interface InMemoryLayerInfo {
  kind: 'Open' | 'Frozen'
  lsn_start: string
  lsn_end?: string
  bytes: number
}

export interface HistoricLayerInfo {
  kind: 'Delta' | 'Image'
  layer_file_name: string
  layer_file_size: number
  /** 18-byte keys in upper-case hex. */
  key_start: string
  key_end: string
  lsn_start: string
  lsn_end?: string
  l0?: boolean
  /** In remote storage: an uploaded index lists it. */
  remote: boolean
  /** On local disk (false: only in remote storage, downloaded when a read needs it). */
  local?: boolean
}

export interface LayerMapInfo {
  in_memory_layers: InMemoryLayerInfo[]
  historic_layers: HistoricLayerInfo[]
}
