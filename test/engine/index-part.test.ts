import { describe, expect, it } from 'vitest'
import {
  decodeIndexPart,
  encodeIndexPart,
  INDEX_PART_VERSION,
  type IndexPart,
  IndexPartError,
} from '../../src/engine/index-part.js'
import { parseLsn } from '../../src/postgres/lsn.js'

const L0 = `${'00'.repeat(18)}-${'FF'.repeat(18)}__0000000001696070-00000000016960E9`
const IMAGE = `${'00'.repeat(18)}-${'FF'.repeat(18)}__00000000016960E8`

const index = (over: Partial<IndexPart['metadata']> = {}, layers: IndexPart['layers'] = {}): IndexPart => ({
  version: INDEX_PART_VERSION,
  layers,
  metadata: {
    diskConsistentLsn: parseLsn('0/16960E8'),
    prevRecordLsn: parseLsn('0/16960B0'),
    ancestorTimeline: null,
    ancestorLsn: 0,
    latestGcCutoffLsn: parseLsn('0/1000000'),
    initdbLsn: parseLsn('0/1696070'),
    pgVersion: 15,
    ...over,
  },
})

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the JSON field by field
type Json = Record<string, any>

/** The JSON of a valid index with one field changed by `edit`. */
function edited(edit: (j: Json) => void): Buffer {
  const j = JSON.parse(encodeIndexPart(index({}, { [L0]: { fileSize: 8192, generation: 1 } })).toString())
  edit(j)
  return Buffer.from(JSON.stringify(j))
}

describe('index_part', () => {
  it('round-trips layers, generations and metadata, with LSNs as Postgres prints them', () => {
    const ip = index(
      {},
      { [L0]: { fileSize: 123456, generation: 3 }, [IMAGE]: { fileSize: 8192, generation: 7 } },
    )
    const buf = encodeIndexPart(ip)
    expect(decodeIndexPart(buf, 'k')).toEqual(ip)
    const j = JSON.parse(buf.toString())
    expect(j.disk_consistent_lsn).toBe('0/16960E8')
    expect(j.metadata).toEqual({
      disk_consistent_lsn: '0/16960E8',
      prev_record_lsn: '0/16960B0',
      ancestor_timeline: null,
      ancestor_lsn: '0/0',
      latest_gc_cutoff_lsn: '0/1000000',
      initdb_lsn: '0/1696070',
      pg_version: 15,
    })
    expect(j.layer_metadata[L0]).toEqual({ file_size: 123456, generation: 3 })
    expect(Object.keys(j.layer_metadata)).toEqual([IMAGE, L0].sort())
  })

  it('round-trips a branch without layers and an unknown prev_record_lsn', () => {
    const ip = index({
      ancestorTimeline: 'ab'.repeat(16),
      ancestorLsn: parseLsn('0/1696070'),
      prevRecordLsn: null,
    })
    expect(decodeIndexPart(encodeIndexPart(ip), 'k')).toEqual(ip)
  })

  it('refuses to store or load an index with no ancestor and no layers', () => {
    expect(() => encodeIndexPart(index())).toThrow(/no ancestor and no layers/)
    const buf = edited((j) => {
      j.layer_metadata = {}
    })
    expect(() => decodeIndexPart(buf, 'tenants/x/index_part.json-00000001')).toThrow(
      'index_part tenants/x/index_part.json-00000001: it has no ancestor and no layers',
    )
  })

  it('names the field that is wrong, in one line', () => {
    const cases: [(j: Json) => void, string][] = [
      [(j) => (j.version = 99), `version 99 is not ${INDEX_PART_VERSION}`],
      [(j) => (j.metadata.pg_version = 14), 'metadata.pg_version 14 is not 15'],
      [(j) => (j.metadata.ancestor_lsn = '16960E8'), 'metadata.ancestor_lsn: invalid LSN "16960E8"'],
      [(j) => (j.metadata.initdb_lsn = 5), 'metadata.initdb_lsn is not an LSN string'],
      [
        (j) => (j.disk_consistent_lsn = '0/1'),
        'disk_consistent_lsn 0/1 differs from metadata.disk_consistent_lsn 0/16960E8',
      ],
      [
        (j) => (j.layer_metadata[L0].file_size = -1),
        `layer_metadata["${L0}"].file_size is not a non-negative integer`,
      ],
      [
        (j) => (j.layer_metadata[L0].generation = 2 ** 32),
        `layer_metadata["${L0}"].generation: 4294967296 is not a generation`,
      ],
      [
        (j) => (j.layer_metadata = { 'not-a-layer': { file_size: 1, generation: 1 } }),
        'layer_metadata: "not-a-layer" is not a layer file name',
      ],
      [
        (j) => (j.metadata.ancestor_timeline = 'main'),
        'metadata.ancestor_timeline "main" is not a timeline id',
      ],
      [(j) => delete j.metadata, 'metadata is not an object'],
    ]
    for (const [edit, message] of cases) {
      let err: unknown
      try {
        decodeIndexPart(edited(edit), 'K')
      } catch (e) {
        err = e
      }
      expect(err, message).toBeInstanceOf(IndexPartError)
      expect((err as Error).message).toContain(`index_part K: ${message}`)
      expect((err as Error).message).not.toContain('\n')
    }
    expect(() => decodeIndexPart(Buffer.from('{"version": 1'), 'K')).toThrow(/^index_part K: not JSON/)
  })
})
