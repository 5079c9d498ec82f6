/**
 * Per-tenant storage engine configuration, with Neon's key names and defaults.
 *
 * TENANT_CONFIG_SCHEMA is the single source for names, types, defaults, ranges and descriptions, so the CLI
 * flags, the HTTP API and the docs can all be derived from it.
 *
 * In memory every value is a number: bytes and counts as such, durations in milliseconds. Text takes
 * the units of src/lib/units.ts (humantime durations, IEC byte sizes); a JS number is taken as
 * milliseconds for a duration (the in-memory unit), except in the TOML file; counts are integers.
 */

import { readFileSync } from 'node:fs'
import { parse as parseToml, TomlError } from 'smol-toml'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import {
  BYTES_HINT,
  bytesFromText,
  DAY,
  DURATION_HINT,
  durationFromText,
  formatBytes,
  formatDuration,
  GiB,
  HOUR,
  KiB,
  MINUTE,
  MiB,
  SECOND,
  TiB,
} from '../lib/units.js'

export type TenantConfigValueType = 'bytes' | 'duration' | 'count'

export interface TenantConfigField {
  readonly type: TenantConfigValueType
  readonly default: number
  readonly min: number
  readonly max: number
  readonly description: string
}

export const TENANT_CONFIG_SCHEMA = {
  checkpoint_distance: {
    type: 'bytes',
    default: 256 * MiB,
    min: 8 * KiB,
    max: TiB,
    description: 'WAL arriving in the open layer before it is frozen and flushed as an L0 delta layer',
  },
  checkpoint_timeout: {
    type: 'duration',
    default: 10 * MINUTE,
    min: 1,
    max: 30 * DAY,
    description:
      'age after which a non-empty open layer is flushed even if checkpoint_distance is not reached',
  },
  compaction_target_size: {
    type: 'bytes',
    default: 128 * MiB,
    min: 8 * KiB,
    max: TiB,
    description: 'target size of L1 delta layers and of the key-space partitions that get image layers',
  },
  compaction_period: {
    type: 'duration',
    default: 20 * SECOND,
    min: 0,
    max: 30 * DAY,
    description: 'interval of the compaction loop; 0 disables it',
  },
  compaction_threshold: {
    type: 'count',
    default: 10,
    min: 2,
    max: 1000,
    description: 'number of L0 delta layers that triggers compaction into L1',
  },
  gc_horizon: {
    type: 'bytes',
    default: 64 * MiB,
    min: 0,
    max: TiB,
    description: 'bytes of WAL history below the last record LSN that GC keeps',
  },
  gc_period: {
    type: 'duration',
    default: HOUR,
    min: 0,
    max: 30 * DAY,
    description: 'interval of the garbage collection loop; 0 disables it',
  },
  image_creation_threshold: {
    type: 'count',
    default: 3,
    min: 1,
    max: 1000,
    description: 'number of delta layers stacked above an image that makes compaction create a new image',
  },
  pitr_interval: {
    type: 'duration',
    default: 7 * DAY,
    min: 0,
    max: 3650 * DAY,
    description: 'time-based retention: GC keeps history newer than this; 0 keeps only gc_horizon',
  },
  walreceiver_connect_timeout: {
    type: 'duration',
    default: 10 * SECOND,
    min: 1,
    max: DAY,
    description: 'how long the WAL receiver waits for a safekeeper connection before trying another',
  },
  lagging_wal_timeout: {
    type: 'duration',
    default: 10 * SECOND,
    min: 1,
    max: DAY,
    description: 'how long the WAL receiver tolerates receiving no WAL before switching safekeepers',
  },
  max_lsn_wal_lag: {
    type: 'bytes',
    default: GiB,
    min: 1,
    max: TiB,
    description:
      'how far another safekeeper may be ahead of the current one before the WAL receiver switches',
  },
} as const satisfies Record<string, TenantConfigField>

export type TenantConfigKey = keyof typeof TENANT_CONFIG_SCHEMA
export type TenantConfig = { [K in TenantConfigKey]: number }
export type TenantConfigOverrides = Partial<TenantConfig>

export const TENANT_CONFIG_KEYS = Object.keys(TENANT_CONFIG_SCHEMA) as TenantConfigKey[]

export const NEON_TENANT_DEFAULTS: Readonly<TenantConfig> = Object.freeze(
  Object.fromEntries(TENANT_CONFIG_KEYS.map((k) => [k, TENANT_CONFIG_SCHEMA[k].default])) as TenantConfig,
)

export class TenantConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'TenantConfigError'
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message)
  }
}

export function isTenantConfigKey(key: string): key is TenantConfigKey {
  return Object.hasOwn(TENANT_CONFIG_SCHEMA, key)
}

// --- values ----------------------------------------------------------------------------------------------

function show(value: unknown): string {
  let text: string
  try {
    text = typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value))
  } catch {
    // A cyclic object cannot be serialised; the error must still name something.
    text = String(value)
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

function formatValue(type: TenantConfigValueType, n: number): string {
  if (type === 'bytes') return formatBytes(n)
  if (type === 'duration') return formatDuration(n)
  return String(n)
}

function rangeText(key: TenantConfigKey): string {
  const f: TenantConfigField = TENANT_CONFIG_SCHEMA[key]
  return `${formatValue(f.type, f.min)} .. ${formatValue(f.type, f.max)}`
}

/**
 * Where a value comes from decides how a bare number is read: in code it is milliseconds for a duration;
 * in what a person writes (the TOML files, JSON sent to the HTTP API) a duration must be a string, since
 * `gc_period = 3600` reads as seconds to a human.
 */
type ValueSource = 'code' | 'file'

function parseValue(key: TenantConfigKey, input: unknown, source: ValueSource): number {
  const f: TenantConfigField = TENANT_CONFIG_SCHEMA[key]
  let n: number | undefined
  if (typeof input === 'number') {
    const numberAllowed = f.type !== 'duration' || source === 'code'
    n = numberAllowed && Number.isSafeInteger(input) ? input : undefined
  } else if (typeof input === 'string') {
    if (f.type === 'bytes') n = bytesFromText(input)
    else if (f.type === 'duration') n = durationFromText(input)
    else n = /^\s*\d+\s*$/.test(input) ? Number(input) : undefined
  }
  if (n === undefined || !Number.isSafeInteger(n)) {
    const what =
      f.type === 'bytes'
        ? `is not a byte size; ${BYTES_HINT}`
        : f.type === 'duration'
          ? `is not a duration; ${DURATION_HINT}`
          : 'is not a whole number'
    throw new TenantConfigError(`${key}: ${show(input)} ${what} (${rangeText(key)})`, key)
  }
  if (n < f.min || n > f.max) {
    throw new TenantConfigError(`${key}: ${show(input)} is out of range; valid is ${rangeText(key)}`, key)
  }
  return n
}

function unknownKey(key: string): TenantConfigError {
  return new TenantConfigError(
    `unknown tenant config key ${show(key)}; valid keys are ${TENANT_CONFIG_KEYS.join(', ')}`,
    key,
  )
}

function asObject(input: unknown, what: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TenantConfigError(`${what} must be an object of tenant config keys, got ${show(input)}`)
  }
  return input as Record<string, unknown>
}

/** Parses and validates one value given as a number or text (a CLI flag, a query parameter). */
export function parseConfigValue(key: string, input: unknown): number {
  if (!isTenantConfigKey(key)) throw unknownKey(key)
  return parseValue(key, input, 'code')
}

function overridesFrom(input: unknown, source: ValueSource): TenantConfigOverrides {
  const obj = asObject(input, 'tenant config')
  const out: TenantConfigOverrides = {}
  for (const [key, value] of Object.entries(obj)) {
    if (!isTenantConfigKey(key)) throw unknownKey(key)
    // An explicit undefined in a Partial means "not set"; spreading it would erase the default.
    if (value !== undefined) out[key] = parseValue(key, value, source)
  }
  return out
}

/** Overrides a person wrote (TOML, JSON over HTTP), in memory form: durations must be text with a unit. */
export function overridesFromText(input: unknown): TenantConfigOverrides {
  return overridesFrom(input, 'file')
}

/** A patch a person wrote: as overridesFromText, and null removes an override. */
export function patchFromText(input: unknown): Record<string, number | null> {
  const obj = asObject(input, 'config patch')
  const out: Record<string, number | null> = {}
  for (const [key, value] of Object.entries(obj)) {
    if (!isTenantConfigKey(key)) throw unknownKey(key)
    if (value === null) out[key] = null
    else if (value !== undefined) out[key] = parseValue(key, value, 'file')
  }
  return out
}

/** Validates a set of overrides (numbers or text) and returns them in memory form. */
export function validateOverrides(input: unknown): TenantConfigOverrides {
  return overridesFrom(input, 'code')
}

/**
 * The configuration a tenant runs with: its overrides over the pageserver-wide defaults, which in turn
 * fall back to Neon's.
 */
export function effectiveConfig(
  overrides: TenantConfigOverrides,
  defaults: TenantConfigOverrides = {},
): TenantConfig {
  return { ...NEON_TENANT_DEFAULTS, ...validateOverrides(defaults), ...validateOverrides(overrides) }
}

/**
 * Merges a patch into a tenant's overrides and returns the new overrides; a null value removes that
 * override. Everything is validated first, so a bad patch leaves nothing half-applied (`current` is never
 * modified).
 */
export function applyConfigPatch(current: TenantConfigOverrides, patch: unknown): TenantConfigOverrides {
  const obj = asObject(patch, 'config patch')
  const next: TenantConfigOverrides = { ...current }
  for (const [key, value] of Object.entries(obj)) {
    if (!isTenantConfigKey(key)) throw unknownKey(key)
    if (value === null) delete next[key]
    else if (value !== undefined) next[key] = parseValue(key, value, 'code')
  }
  return next
}

/**
 * A config (or overrides) as Neon's HTTP API shows it: sizes and counts as JSON numbers, durations as
 * humantime strings ("10 m"), keys in schema order.
 */
export function configToJson(config: TenantConfigOverrides): Record<string, number | string> {
  const out: Record<string, number | string> = {}
  for (const key of TENANT_CONFIG_KEYS) {
    const n = config[key]
    if (n === undefined) continue
    out[key] = TENANT_CONFIG_SCHEMA[key].type === 'duration' ? formatDuration(n) : n
  }
  return out
}

// --- persistence -----------------------------------------------------------------------------------------

/** Writes the overrides as TOML: durations as strings ("20 s"), sizes as integers with a readable comment. */
export function saveTenantConfig(file: string, overrides: TenantConfigOverrides): void {
  const valid = validateOverrides(overrides)
  const lines = ['# Tenant config overrides; keys not listed use the pageserver defaults.']
  for (const key of TENANT_CONFIG_KEYS) {
    const n = valid[key]
    if (n === undefined) continue
    const type = TENANT_CONFIG_SCHEMA[key].type
    if (type === 'duration') lines.push(`${key} = "${formatDuration(n)}"`)
    else if (type === 'bytes' && formatBytes(n) !== String(n)) lines.push(`${key} = ${n} # ${formatBytes(n)}`)
    else lines.push(`${key} = ${n}`)
  }
  writeFileDurable(file, `${lines.join('\n')}\n`)
}

function lineOfKey(text: string, key: string): number | undefined {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trimStart()
    for (const spelled of [key, `"${key}"`, `'${key}'`]) {
      if (t.startsWith(spelled) && t.slice(spelled.length).trimStart().startsWith('=')) return i + 1
    }
  }
  return undefined
}

/** Reads the overrides saved by saveTenantConfig; a missing file means no overrides. */
export function loadTenantConfig(file: string): TenantConfigOverrides {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new TenantConfigError(`${file}: cannot read: ${(err as Error).message}`)
  }
  let doc: Record<string, unknown>
  try {
    doc = parseToml(text)
  } catch (err) {
    if (!(err instanceof TomlError)) throw err
    const reason = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '')
    throw new TenantConfigError(`${file}:${err.line}:${err.column}: not valid TOML: ${reason}`)
  }
  try {
    return overridesFrom(doc, 'file')
  } catch (err) {
    if (!(err instanceof TenantConfigError)) throw err
    const line = err.key === undefined ? undefined : lineOfKey(text, err.key)
    throw new TenantConfigError(`${file}${line === undefined ? '' : `:${line}`}: ${err.message}`, err.key)
  }
}
