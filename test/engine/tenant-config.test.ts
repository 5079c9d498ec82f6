import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  applyConfigPatch,
  effectiveConfig,
  loadTenantConfig,
  NEON_TENANT_DEFAULTS,
  parseConfigValue,
  saveTenantConfig,
  TENANT_CONFIG_KEYS,
  TENANT_CONFIG_SCHEMA,
  TenantConfigError,
  validateOverrides,
} from '../../src/engine/tenant-config.js'

const MiB = 1024 * 1024

function errorOf(f: () => unknown): TenantConfigError {
  try {
    f()
  } catch (err) {
    expect(err).toBeInstanceOf(TenantConfigError)
    return err as TenantConfigError
  }
  throw new Error('expected a TenantConfigError')
}

describe('tenant config defaults', () => {
  it("are Neon's", () => {
    expect(NEON_TENANT_DEFAULTS).toEqual({
      checkpoint_distance: 268435456,
      checkpoint_timeout: 10 * 60_000,
      compaction_target_size: 134217728,
      compaction_period: 20_000,
      compaction_threshold: 10,
      gc_horizon: 67108864,
      gc_period: 3_600_000,
      image_creation_threshold: 3,
      pitr_interval: 7 * 24 * 3_600_000,
      walreceiver_connect_timeout: 10_000,
      lagging_wal_timeout: 10_000,
      max_lsn_wal_lag: 1024 * MiB,
    })
    expect(effectiveConfig({})).toEqual(NEON_TENANT_DEFAULTS)
  })

  it('describes every key with a default inside its range', () => {
    for (const key of TENANT_CONFIG_KEYS) {
      const f = TENANT_CONFIG_SCHEMA[key]
      expect(f.description.length).toBeGreaterThan(10)
      expect(f.default).toBeGreaterThanOrEqual(f.min)
      expect(f.default).toBeLessThanOrEqual(f.max)
    }
  })
})

describe('parsing', () => {
  it('accepts numbers and text for every kind of key', () => {
    expect(parseConfigValue('checkpoint_distance', 16 * MiB)).toBe(16 * MiB)
    expect(parseConfigValue('checkpoint_distance', '16 MiB')).toBe(16 * MiB)
    expect(parseConfigValue('compaction_period', 0)).toBe(0)
    expect(parseConfigValue('compaction_period', '0 s')).toBe(0)
    expect(parseConfigValue('compaction_period', 250)).toBe(250)
    expect(parseConfigValue('compaction_threshold', '4')).toBe(4)
    expect(parseConfigValue('compaction_threshold', 4)).toBe(4)
    expect(validateOverrides({ gc_period: '2 h', gc_horizon: '1 GiB', image_creation_threshold: 1 })).toEqual(
      {
        gc_period: 7_200_000,
        gc_horizon: 1024 * MiB,
        image_creation_threshold: 1,
      },
    )
  })
})

describe('validation errors', () => {
  const invalid: Record<string, unknown[]> = {
    checkpoint_distance: ['abc', 4096, '2 TiB', -1, 1.5, true],
    checkpoint_timeout: ['10', 0, '31 days', 'abc', null],
    compaction_target_size: ['x', 0, '2048 GiB'],
    compaction_period: ['20', -1, '31 days', {}],
    compaction_threshold: [1, '1', 1001, 2.5, 'ten'],
    gc_horizon: ['abc', -5, '1025 GiB', '64MB'],
    gc_period: ['1 hour and a bit', '31 days', []],
    image_creation_threshold: [0, '1001', 'x'],
    pitr_interval: ['7', '3651 days', -1],
    walreceiver_connect_timeout: [0, '2 days', '10'],
    lagging_wal_timeout: [0, '25 h', 'fast'],
    max_lsn_wal_lag: [0, '2 TiB', '1 GB'],
  }

  it('covers every key', () => {
    expect(Object.keys(invalid).sort()).toEqual([...TENANT_CONFIG_KEYS].sort())
  })

  for (const [key, values] of Object.entries(invalid)) {
    it(`refuses bad values of ${key} with one line naming it`, () => {
      for (const value of values) {
        const err = errorOf(() => validateOverrides({ [key]: value }))
        expect(err.message.startsWith(`${key}: `), err.message).toBe(true)
        expect(err.message).not.toContain('\n')
        expect(err.message).toMatch(/ \.\. /)
        expect(err.key).toBe(key)
      }
    })
  }

  it('says what is valid', () => {
    expect(errorOf(() => parseConfigValue('gc_horizon', 'abc')).message).toBe(
      'gc_horizon: "abc" is not a byte size; use a number of bytes or a number with KiB, MiB, GiB or TiB (0 .. 1 TiB)',
    )
    expect(errorOf(() => parseConfigValue('compaction_threshold', 1)).message).toBe(
      'compaction_threshold: 1 is out of range; valid is 2 .. 1000',
    )
    expect(errorOf(() => parseConfigValue('compaction_period', '20')).message).toBe(
      'compaction_period: "20" is not a duration; use a whole number with a unit (ms, s, m, h, d, w), ' +
        'e.g. "20 s" or "1h 30m" (0 s .. 30 days)',
    )
    expect(errorOf(() => parseConfigValue('checkpoint_distance', '1 KiB')).message).toBe(
      'checkpoint_distance: "1 KiB" is out of range; valid is 8 KiB .. 1 TiB',
    )
  })

  it('refuses unknown keys, listing the valid ones', () => {
    const err = errorOf(() => validateOverrides({ gc_horizon: 1, checkpoint_distanse: 1 }))
    expect(err.message).toMatch(
      /^unknown tenant config key "checkpoint_distanse"; valid keys are checkpoint_distance,/,
    )
    for (const key of TENANT_CONFIG_KEYS) expect(err.message).toContain(key)
    expect(() => parseConfigValue('__proto__', 1)).toThrow(/unknown tenant config key/)
    expect(() => validateOverrides('gc_horizon=1')).toThrow(/must be an object/)
  })
})

describe('overrides', () => {
  it('layer over pageserver-wide defaults, which layer over Neon', () => {
    const cfg = effectiveConfig({ gc_period: 0 }, { gc_period: 60_000, compaction_threshold: 4 })
    expect(cfg.gc_period).toBe(0)
    expect(cfg.compaction_threshold).toBe(4)
    expect(cfg.checkpoint_distance).toBe(256 * MiB)
    expect(effectiveConfig({ gc_period: undefined }).gc_period).toBe(3_600_000)
  })

  it('merge a patch and remove overrides set to null', () => {
    const current = { gc_period: 60_000, compaction_threshold: 4 }
    const next = applyConfigPatch(current, {
      gc_period: null,
      checkpoint_distance: '64 MiB',
      pitr_interval: '1 day',
    })
    expect(next).toEqual({
      compaction_threshold: 4,
      checkpoint_distance: 64 * MiB,
      pitr_interval: 86_400_000,
    })
    expect(current).toEqual({ gc_period: 60_000, compaction_threshold: 4 })
    expect(applyConfigPatch(next, { checkpoint_distance: null, compaction_threshold: undefined })).toEqual({
      compaction_threshold: 4,
      pitr_interval: 86_400_000,
    })
  })

  it('change nothing when any part of a patch is invalid', () => {
    const current = { gc_period: 60_000 }
    expect(() => applyConfigPatch(current, { gc_period: null, compaction_threshold: 0 })).toThrow(
      /^compaction_threshold: /,
    )
    expect(() => applyConfigPatch(current, { gc_period: '1 h', bogus: 1 })).toThrow(
      /unknown tenant config key/,
    )
    expect(current).toEqual({ gc_period: 60_000 })
  })
})

describe('persistence', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'zenith-tenant-config-'))
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('round-trips overrides through a human-readable TOML file', () => {
    const file = path.join(dir, 'config')
    const overrides = {
      checkpoint_distance: 64 * MiB,
      compaction_period: 20_000,
      gc_period: 5_400_000,
      gc_horizon: 1000,
      compaction_threshold: 3,
      pitr_interval: 0,
    }
    saveTenantConfig(file, overrides)
    const text = readFileSync(file, 'utf8')
    expect(text).toContain('checkpoint_distance = 67108864 # 64 MiB\n')
    expect(text).toContain('compaction_period = "20 s"\n')
    expect(text).toContain('gc_period = "1 h 30 m"\n')
    expect(text).toContain('gc_horizon = 1000\n')
    expect(text).toContain('pitr_interval = "0 s"\n')
    expect(text).not.toContain('gc_threshold')
    expect(loadTenantConfig(file)).toEqual(overrides)

    saveTenantConfig(file, {})
    expect(loadTenantConfig(file)).toEqual({})
  })

  it('treats a missing file as no overrides', () => {
    expect(loadTenantConfig(path.join(dir, 'nope'))).toEqual({})
  })

  it('reads hand-written forms Neon accepts', () => {
    const file = path.join(dir, 'config')
    writeFileSync(file, 'checkpoint_distance = "128 MiB"\ngc_period = "1 hr"\n"compaction_threshold" = 5\n')
    expect(loadTenantConfig(file)).toEqual({
      checkpoint_distance: 128 * MiB,
      gc_period: 3_600_000,
      compaction_threshold: 5,
    })
  })

  it('names the file and the line of a corrupt TOML file', () => {
    const file = path.join(dir, 'config')
    writeFileSync(file, 'gc_period = "1 h"\ncompaction_threshold = = 3\n')
    const err = errorOf(() => loadTenantConfig(file))
    expect(err.message).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: not valid TOML: `),
    )
    expect(err.message).not.toContain('\n')
  })

  it('names the file, the line and the key of an invalid value', () => {
    const file = path.join(dir, 'config')
    writeFileSync(file, '# overrides\ngc_period = "1 h"\n\n  gc_horizon = "lots"\n')
    expect(errorOf(() => loadTenantConfig(file)).message).toBe(
      `${file}:4: gc_horizon: "lots" is not a byte size; use a number of bytes or a number with KiB, MiB, GiB or TiB (0 .. 1 TiB)`,
    )
    writeFileSync(file, 'gc_period = 3600\n')
    expect(errorOf(() => loadTenantConfig(file)).message).toMatch(/:1: gc_period: 3600 is not a duration; /)
    writeFileSync(file, 'gc_period = "1 h"\n[tenant]\ngc_horizon = 1\n')
    expect(errorOf(() => loadTenantConfig(file)).message).toMatch(/: unknown tenant config key "tenant"; /)
  })
})
