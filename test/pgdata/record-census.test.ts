/**
 * The record census: every record type PostgreSQL 15's built-in rmgrs write (src/postgres/rmgr.ts) has
 * a decision, each `applied` one an applier, and docs/postgres-on-zenith.md shows exactly the table the
 * code dispatches on. A record type the census lacks is refused by ingest, never dropped.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import {
  CONSISTENCY_CHECKED_RMGRS,
  censusOf,
  RECORD_CENSUS,
  renderRecordCensus,
} from '../../src/pgdata/record-census.js'
import { APPLIERS, IngestError, WalIngest } from '../../src/pgdata/walingest.js'
import {
  RM_MAX_BUILTIN_ID,
  RM_XLOG_ID,
  RMGR_NAMES,
  recordTypes,
  XLOG_XACT_COMMIT,
  XLOG_XACT_HAS_INFO,
} from '../../src/postgres/rmgr.js'
import type { DecodedRecord } from '../../src/postgres/xlog-record.js'

const DOC = path.join(import.meta.dirname, '../../docs/postgres-on-zenith.md')
const BEGIN = '<!-- record-census: begin -->'
const END = '<!-- record-census: end -->'

describe('record census', () => {
  it('has a decision for every record type of every built-in rmgr, and none for types that do not exist', () => {
    const missing: string[] = []
    for (let rmid = 0; rmid <= RM_MAX_BUILTIN_ID; rmid++) {
      const names = recordTypes(rmid).map((t) => t.name)
      for (const name of names) if (!RECORD_CENSUS[rmid]?.[name]) missing.push(`${RMGR_NAMES[rmid]}/${name}`)
      const stale = Object.keys(RECORD_CENSUS[rmid] ?? {}).filter((n) => !names.includes(n))
      expect(stale, `${RMGR_NAMES[rmid]}: census entries for record types rmgr.ts does not have`).toEqual([])
    }
    expect(missing, 'record types neither applied nor skipped').toEqual([])
    expect(
      Object.keys(RECORD_CENSUS)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: RM_MAX_BUILTIN_ID + 1 }, (_, i) => i))
  })

  it('says what is applied and why nothing is needed; every applied rmgr has an applier, and only those', () => {
    const appliedRmgrs = new Set<number>()
    for (const [rmid, entries] of Object.entries(RECORD_CENSUS)) {
      for (const [name, e] of Object.entries(entries)) {
        if (e.effect !== 'pages')
          expect(e.note.length, `${RMGR_NAMES[Number(rmid)]}/${name}`).toBeGreaterThan(10)
        if (e.effect === 'applied') appliedRmgrs.add(Number(rmid))
      }
    }
    expect(
      Object.keys(APPLIERS)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([...appliedRmgrs].sort((a, b) => a - b))
  })

  it('names as consistency-checked exactly the rmgrs whose records rely on page images, FPI records aside', () => {
    const withPages = Object.entries(RECORD_CENSUS)
      .filter(([, types]) => Object.values(types).some((e) => e.effect === 'pages'))
      .map(([id]) => Number(id))
    // XLOG's FPI records are page images whatever wal_consistency_checking says.
    expect(withPages.filter((id) => id !== RM_XLOG_ID).sort((a, b) => a - b)).toEqual(
      [...CONSISTENCY_CHECKED_RMGRS].sort((a, b) => a - b),
    )
  })

  it('looks records up by their full info byte, flags and all', () => {
    expect(censusOf(1, XLOG_XACT_COMMIT | XLOG_XACT_HAS_INFO)?.effect).toBe('applied')
    expect(censusOf(RM_XLOG_ID, 0x22)?.note).toBe('redo does nothing') // NOOP with XLR_CHECK_CONSISTENCY
    expect(censusOf(RM_XLOG_ID, 0xc0)).toBeUndefined() // unused in 15
    expect(censusOf(128, 0)).toBeUndefined() // custom rmgr
  })

  it('is in docs/postgres-on-zenith.md exactly as the code has it', () => {
    const doc = readFileSync(DOC, 'utf8')
    const from = doc.indexOf(BEGIN)
    const to = doc.indexOf(END)
    expect(from, `${BEGIN} in the doc`).toBeGreaterThan(0)
    expect(doc.slice(from + BEGIN.length, to).trim()).toBe(renderRecordCensus())
  })
})

describe('WAL ingest outside the census', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'zenith-census-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))

  const record = (rmid: number, info: number): DecodedRecord => ({
    lsn: 0x200_0000,
    endLsn: 0x200_0040,
    totLen: 24,
    xid: 0,
    prev: 0,
    info,
    rmid,
    crc: 0,
    blocks: [],
    mainData: Buffer.alloc(0),
    origin: 0,
    toplevelXid: 0,
    fpiLen: 0,
    raw: Buffer.alloc(0),
  })

  it('refuses a record of a custom rmgr or an unknown type, naming it', async () => {
    const repo = await Repository.open(work, { background: false })
    const ingest = new WalIngest(repo.createTenant().createTimeline(0x100_0000))
    expect(() => ingest.ingest(record(130, 0x10))).toThrow(IngestError)
    expect(() => ingest.ingest(record(130, 0x10))).toThrow(
      'record at 0/2000000 (custom130/UNKNOWN (10)) changes storage in a way zenith does not apply',
    )
    expect(() => ingest.ingest(record(RM_XLOG_ID, 0xc0))).toThrow(/\(XLOG\/UNKNOWN \(c0\)\)/)
  })
})
