/**
 * The compute settings zenith cannot serve, refused in one line when an endpoint is created and again
 * when it starts (the cluster around it may have changed in between) — instead of a compute that starts
 * and then hangs, or one that quietly stops keeping zenith's promises:
 *
 *   wal_level = minimal                 nothing streams: the safekeepers and the pageserver need replica
 *   wal_consistency_checking            must cover every rmgr whose pages ingest builds from images
 *   synchronous_commit = remote_apply   safekeepers and pageserver never report WAL applied: every
 *                                       commit would wait for ever
 *   max_wal_senders                     one per safekeeper (one for the pageserver in direct mode)
 *   hot_standby = off                   a read-only endpoint is a hot standby: without it, no connections
 *   port, listen_addresses,             zenith sets them (`pg create --port`); the compute listens on
 *   unix_socket_directories             127.0.0.1 for the CLI and the pageserver
 *   synchronous_standby_names           zenith sets it: the safekeepers' quorum, or the pageserver
 *   zenith.term                         zenith sets it: the term a compute was elected for
 *
 * Names and values Postgres itself rejects (a misspelt parameter, `shared_buffers = lots`) need no rule:
 * the compute then fails to start at once, and `pg start` shows Postgres' own line.
 * full_page_writes = off is served: under wal_consistency_checking every changed block is logged with
 * its image whatever full_page_writes says, and the pageserver builds pages from those images.
 */
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { CONSISTENCY_CHECKED_RMGRS } from '../pgdata/record-census.js'
import { RMGR_NAMES } from '../postgres/rmgr.js'
import { COMPUTE_TERM_SETTING } from '../safekeeper/config.js'

export class ComputeSettingError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'ComputeSettingError'
}

export interface ComputeContext {
  /** A read-only endpoint at a fixed LSN (a hot standby that never receives WAL). */
  readOnly: boolean
  /** How many safekeepers the cluster has: 0 is direct mode. */
  safekeepers: number
}

interface Rule {
  /** The reason the value cannot be served, with what would be valid; null when it can. */
  check(value: string, ctx: ComputeContext): string | null
}

const IMAGE_RMGR_NAMES = [...CONSISTENCY_CHECKED_RMGRS].map((id) => RMGR_NAMES[id].toLowerCase())

const managed = (how: string): Rule => ({ check: () => `zenith sets it (${how})` })

const RULES: Record<string, Rule> = {
  wal_level: {
    check: (v) =>
      v.toLowerCase() === 'minimal'
        ? 'with minimal WAL nothing streams to the safekeepers and the pageserver; valid: replica, logical'
        : null,
  },
  wal_consistency_checking: {
    check: (v) => {
      const listed = v.split(',').map((s) => s.trim().toLowerCase())
      if (listed.includes('all')) return null
      const missing = IMAGE_RMGR_NAMES.filter((n) => !listed.includes(n))
      return missing.length === 0
        ? null
        : `the pageserver builds pages of ${missing.join(', ')} from the images it adds to every record; valid: all, or a list with ${IMAGE_RMGR_NAMES.join(', ')}`
    },
  },
  synchronous_commit: {
    check: (v) =>
      v.toLowerCase() === 'remote_apply'
        ? 'safekeepers and the pageserver never report WAL as applied, so every commit would wait for ever; valid: on, remote_write, local, off'
        : null,
  },
  max_wal_senders: {
    check: (v, ctx) => {
      const need = Math.max(1, ctx.safekeepers)
      const n = Number(v)
      if (!Number.isInteger(n)) return `it is not an integer; valid: ${need} or more`
      if (n >= need) return null
      const who = ctx.safekeepers > 0 ? `each of the ${ctx.safekeepers} safekeepers` : 'the pageserver'
      return `${who} streams WAL from the compute through a walsender of its own; valid: ${need} or more`
    },
  },
  hot_standby: {
    check: (v, ctx) =>
      ctx.readOnly && parsePgBool(v) === false
        ? 'a read-only endpoint runs as a hot standby, which takes no connections without it; valid: on'
        : null,
  },
  port: managed('`zenith pg create --port`'),
  listen_addresses: managed('127.0.0.1, where the CLI and the pageserver reach the compute'),
  unix_socket_directories: managed('none: clients connect over TCP'),
  synchronous_standby_names: managed('the safekeepers as a quorum, or the pageserver in direct mode'),
  [COMPUTE_TERM_SETTING]: managed("the term of the compute's election, which its safekeepers check"),
}

/**
 * Refuses the first setting zenith cannot serve: one line naming it, its value and why. Names are
 * compared as Postgres compares them, without regard to case.
 */
export function checkComputeSettings(settings: Readonly<Record<string, string>>, ctx: ComputeContext): void {
  for (const [key, value] of Object.entries(settings)) {
    const why = RULES[key.toLowerCase()]?.check(value, ctx)
    if (why) throw new ComputeSettingError(`setting ${key} = '${value}' cannot be served: ${why}`)
  }
}

/** Postgres' parse_bool: on/off, true/false, yes/no (or a prefix of them), 1/0; null for anything else. */
export function parsePgBool(value: string): boolean | null {
  const v = value.trim().toLowerCase()
  if (v === '1') return true
  if (v === '0') return false
  if (v.length >= 2 && 'on'.startsWith(v)) return true
  if (v.length >= 2 && 'off'.startsWith(v)) return false
  for (const w of ['true', 'yes']) if (v.length > 0 && w.startsWith(v)) return true
  for (const w of ['false', 'no']) if (v.length > 0 && w.startsWith(v)) return false
  return null
}
