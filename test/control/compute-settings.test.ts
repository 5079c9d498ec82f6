import { describe, expect, it } from 'vitest'
import { checkComputeSettings, parsePgBool } from '../../src/control/compute-settings.js'
import { ZenithError } from '../../src/lib/errors.js'

const direct = { readOnly: false, safekeepers: 0 }
const threeSks = { readOnly: false, safekeepers: 3 }
const readOnly = { readOnly: true, safekeepers: 0 }

/** The one-line refusal, or null when the settings are served. */
function refusal(settings: Record<string, string>, ctx = direct): string | null {
  try {
    checkComputeSettings(settings, ctx)
    return null
  } catch (err) {
    expect(err).toBeInstanceOf(ZenithError)
    expect((err as ZenithError).kind).toBe('user_input')
    expect((err as Error).message).not.toContain('\n')
    return (err as Error).message
  }
}

describe('compute settings zenith cannot serve', () => {
  it('refuses wal_level = minimal, in any case, and takes replica and logical', () => {
    expect(refusal({ wal_level: 'minimal' })).toMatch(
      /^setting wal_level = 'minimal' cannot be served: .*valid: replica, logical$/,
    )
    expect(refusal({ WAL_LEVEL: 'Minimal' })).toMatch(/WAL_LEVEL = 'Minimal' cannot be served/)
    expect(refusal({ wal_level: 'replica' })).toBeNull()
    expect(refusal({ wal_level: 'logical' })).toBeNull()
  })

  it('refuses a wal_consistency_checking without the rmgrs ingest builds from images', () => {
    expect(refusal({ wal_consistency_checking: 'heap,btree' })).toMatch(
      /wal_consistency_checking = 'heap,btree' cannot be served: the pageserver builds pages of heap2, hash, gin, gist, sequence, spgist, brin, generic/,
    )
    expect(refusal({ wal_consistency_checking: '' })).toMatch(/cannot be served/)
    expect(refusal({ wal_consistency_checking: 'all' })).toBeNull()
    expect(
      refusal({ wal_consistency_checking: 'Heap, heap2,btree,hash,gin,gist,sequence,spgist,brin,generic' }),
    ).toBeNull()
  })

  it('refuses synchronous_commit = remote_apply, which would wait for ever', () => {
    expect(refusal({ synchronous_commit: 'remote_apply' }, threeSks)).toMatch(/never report WAL as applied/)
    for (const v of ['on', 'remote_write', 'local', 'off'])
      expect(refusal({ synchronous_commit: v })).toBeNull()
  })

  it('wants a walsender per safekeeper, or one for the pageserver', () => {
    expect(refusal({ max_wal_senders: '2' }, threeSks)).toMatch(
      /max_wal_senders = '2' cannot be served: each of the 3 safekeepers .*valid: 3 or more$/,
    )
    expect(refusal({ max_wal_senders: '3' }, threeSks)).toBeNull()
    expect(refusal({ max_wal_senders: '0' })).toMatch(/the pageserver streams WAL .*valid: 1 or more$/)
    expect(refusal({ max_wal_senders: 'many' })).toMatch(/not an integer/)
  })

  it('refuses hot_standby = off on a read-only endpoint only', () => {
    for (const v of ['off', 'of', 'false', 'n', '0'])
      expect(refusal({ hot_standby: v }, readOnly)).toMatch(/hot standby/)
    expect(refusal({ hot_standby: 'on' }, readOnly)).toBeNull()
    expect(refusal({ hot_standby: 'off' }, direct)).toBeNull()
  })

  it('refuses what zenith sets itself', () => {
    expect(refusal({ port: '5432' })).toMatch(
      /^setting port = '5432' cannot be served: zenith sets it \(`zenith pg create --port`\)$/,
    )
    expect(refusal({ listen_addresses: '*' })).toMatch(/zenith sets it/)
    expect(refusal({ unix_socket_directories: '/tmp' })).toMatch(/zenith sets it/)
    expect(refusal({ synchronous_standby_names: '*' }, threeSks)).toMatch(/quorum/)
    expect(refusal({ 'Zenith.Term': '9' }, threeSks)).toMatch(/the term of the compute's election/)
  })

  it('serves everything else, full_page_writes = off included', () => {
    expect(
      refusal({ full_page_writes: 'off', work_mem: '64MB', 'auto_explain.log_min_duration': '0' }),
    ).toBeNull()
  })

  it("parses booleans as Postgres' parse_bool does", () => {
    for (const v of ['on', 'ON', 'true', 't', 'yes', 'y', '1']) expect(parsePgBool(v)).toBe(true)
    for (const v of ['off', 'of', 'false', 'f', 'no', 'n', '0']) expect(parsePgBool(v)).toBe(false)
    for (const v of ['o', '', 'maybe', '2']) expect(parsePgBool(v)).toBeNull()
  })
})
