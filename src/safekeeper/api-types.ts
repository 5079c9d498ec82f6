/**
 * The JSON of a safekeeper's management API, declared once for the server (http-api.ts) and the control
 * plane's client. Neon's field names where Neon has the field; LSNs as Postgres prints them.
 */
import type { SessionState } from '../protocol/replication-client.js'

export type RecoveryState = 'recovering' | 'done' | 'failed' | 'cancelled'

export interface SkStatusResponse {
  id: number
}

export interface SkTimelineCreateRequest {
  tenant_id: string
  timeline_id: string
  /** The compute's database system identifier, a decimal uint64. */
  system_id: string
  /** The first LSN of the timeline's WAL: a record boundary, the LSN of the compute's basebackup. */
  start_lsn: string
  /** Postgres' timeline id of the WAL (default 1). */
  pg_timeline?: number
  /** Bytes per WAL segment (default 16 MiB). */
  wal_seg_size?: number
}

/** zenith's own route: the compute of a term, which this safekeeper pulls WAL from. */
export interface SkComputeRequest {
  connstr: string
  term: number
  /**
   * The term's history as its election made it, ending with `term` at the LSN its compute starts at:
   * WAL of other terms past where ours parts from it is cut first. Without it the term starts at the
   * safekeeper's own flush LSN.
   */
  term_history?: SkTermEntry[]
}

export interface SkTermEntry {
  term: number
  lsn: string
}

export interface SkTimelineInfo {
  /** The safekeeper answering and its walsender address (`host:port`), as Neon's broker publishes them. */
  safekeeper_id: number
  safekeeper_connstr: string
  tenant_id: string
  timeline_id: string
  system_id: string
  pg_timeline: number
  wal_seg_size: number
  acceptor_state: { term: number; epoch: number; term_history: SkTermEntry[] }
  flush_lsn: string
  commit_lsn: string
  /**
   * zenith's own: the newest end of WAL a compute reported (walEnd of its messages: its flush LSN); null
   * until one has streamed to this safekeeper since it started.
   */
  compute_end_lsn: string | null
  /**
   * zenith's own: how many seconds ago the compute's end was at flush_lsn and at commit_lsn (LsnClock), to
   * the millisecond; null until the compute's end has been heard.
   */
  lag_seconds: { flush: number | null; commit: number | null }
  truncate_lsn: string
  backup_lsn: string
  peer_horizon_lsn: string
  remote_consistent_lsn: string
  timeline_start_lsn: string
  local_start_lsn: string
  /** WAL coming in: the compute of the current term. */
  walreceivers: { connstr: string; term: number; status: SessionState; last_error: string | null }[]
  /** WAL going out: the pageserver and peers reading from this safekeeper. */
  walsenders: { application_name: string; start_lsn: string; sent_lsn: string }[]
  /**
   * zenith's own: the peers that answered when last asked (about every 100 ms), in whatever term they
   * are; only those in this safekeeper's term count for commit_lsn and WAL removal.
   */
  peers: { addr: string; flush_lsn: string; term: number; last_seen_ms_ago: number }[]
  /** zenith's own: the last fetch of missing WAL from a peer of the same term, null if there was none. */
  recovery: {
    /** The donor's HTTP address, as `peers` lists it. */
    from: string
    state: RecoveryState
    /** Where the fetch started, and the donor's flush LSN when it started: where it stops. */
    start_lsn: string
    until_lsn: string
    last_error: string | null
  } | null
  pageserver_feedback: {
    last_received_lsn: string
    disk_consistent_lsn: string
    remote_consistent_lsn: string
    current_logical_size: number
    reply_time_us: number
  } | null
}

/** zenith's own route: a vote for a term, in the election a compute start runs. */
export interface SkVoteRequest {
  term: number
}

export interface SkVoteResponse {
  vote_given: boolean
  /** The term voted for, or (refused) the higher term already accepted. */
  term: number
  /** The term of the last WAL held (Neon's epoch). */
  epoch: number
  /** The end of the WAL held: a record boundary after a vote. */
  flush_lsn: string
  term_history: SkTermEntry[]
}

export interface SkDigest {
  from_lsn: string
  until_lsn: string
  /** sha256 of the WAL bytes in [from_lsn, until_lsn), hex. */
  sha256: string
}
