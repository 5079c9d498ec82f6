/**
 * A safekeeper timeline joining a term on real Postgres WAL (the committed fixture), without a compute:
 * the divergent tail is cut where the term's history parts from its own, the history is adopted, a
 * restart finds the WAL ending at the cut (not where it ended before), and the acceptor does not pull
 * from a compute whose term starts above the WAL it holds.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { recordEndLsn } from '../../src/postgres/wal-page.js'
import { SafekeeperMetrics } from '../../src/safekeeper/safekeeper-metrics.js'
import { SkTimeline, type SkTimelineEnv } from '../../src/safekeeper/timeline.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { waitFor } from '../harness/wait.js'

const fx = loadWalFixture()
const SEG = fx.segmentSize
const START = parseLsn(fx.start)
const END = parseLsn(fx.end)
const BYTES = fx.bytes()
const FIRST = parseLsn(fx.records[0].lsn)
/** A record boundary in the first segment, well before the end: where the term's history parts. */
const PART = (() => {
  const r = fx.records[Math.floor(fx.records.length / 10)]
  return recordEndLsn(parseLsn(r.lsn), r.totLen, SEG)
})()
const NOWHERE = 'postgresql://postgres@127.0.0.1:1/postgres'
/** Three members and no peers: nothing is committed, so every cut is allowed. */
const ENV: SkTimelineEnv = {
  maxWriteLag: 0,
  maxFlushLag: 0,
  log: () => {},
  metrics: new SafekeeperMetrics(),
  applicationName: 'sk1',
  members: 3,
}

let dir = ''
let tl: SkTimeline | undefined
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sk-timeline-'))
})
afterEach(async () => {
  await tl?.close()
  tl = undefined
  rmSync(dir, { recursive: true, force: true })
})

/** A timeline in term 1 holding the fixture's WAL from its first record to its end, all durable. */
async function timelineWithWal(): Promise<SkTimeline> {
  const t = await SkTimeline.create(
    dir,
    {
      tenantId: 'a1'.repeat(16),
      timelineId: 'b2'.repeat(16),
      // xlp_sysid of the first page's long header
      systemId: String(BYTES.readBigUInt64LE(24)),
      pgTimeline: 1,
      walSegSize: SEG,
      startLsn: FIRST,
    },
    ENV,
  )
  await t.setCompute(NOWHERE, 1)
  await t.vote(2)
  t.store.write(FIRST, Buffer.from(BYTES.subarray(FIRST - START, END - START)))
  const recordEnd = t.store.endRecordLsn
  await t.store.flush()
  t.flushed(recordEnd)
  expect(t.flushLsn).toBe(END)
  return t
}

const reopen = async (t: SkTimeline): Promise<SkTimeline> => {
  await t.close()
  return SkTimeline.open(t.dir, ENV)
}

describe('a safekeeper timeline joining a term', () => {
  it('cuts its tail where the term history parts from its own, and a restart finds the WAL ending there', async () => {
    tl = await timelineWithWal()
    // Term 2 was elected without us at PART: our WAL after it is term 1's that no majority kept.
    const history = [
      { term: 1, lsn: FIRST },
      { term: 2, lsn: PART },
      { term: 3, lsn: PART },
    ]
    await tl.setCompute(NOWHERE, 3, history)
    expect(tl.flushLsn).toBe(PART)
    expect(tl.state.termHistory).toEqual(history)
    tl = await reopen(tl)
    expect(tl.flushLsn).toBe(PART)
    expect(tl.state.termHistory).toEqual(history)
  })

  it('keeps WAL of a term the new term continues, and cuts what an election outcome parts from, for a restart too', async () => {
    tl = await timelineWithWal()
    await tl.setCompute(NOWHERE, 3, [
      { term: 1, lsn: FIRST },
      { term: 3, lsn: END },
    ])
    expect(tl.flushLsn).toBe(END)
    // Only a voter of term 4 without its compute takes term 4's outcome.
    await expect(tl.adoptTerm(4, [{ term: 4, lsn: PART }])).rejects.toThrow(
      /belongs to the voters of that term/,
    )
    await tl.vote(4)
    await expect(tl.adoptTerm(4, [{ term: 3, lsn: PART }])).rejects.toThrow(/must end with term 4/)
    // Term 4's election found term 2's WAL from PART on newer than our term 3: ours is cut there.
    const outcome = [
      { term: 1, lsn: FIRST },
      { term: 2, lsn: PART },
      { term: 4, lsn: PART },
    ]
    await tl.adoptTerm(4, outcome)
    expect(tl.flushLsn).toBe(PART)
    expect(tl.epoch).toBe(4)
    tl = await reopen(tl)
    expect(tl.flushLsn).toBe(PART)
    expect(tl.state.termHistory).toEqual(outcome)
  })

  it('does not pull from the compute of a term that starts above the WAL it holds', async () => {
    tl = await timelineWithWal()
    const termStart: Lsn = END + 0x10000
    await tl.setCompute(NOWHERE, 3, [
      { term: 1, lsn: FIRST },
      { term: 3, lsn: termStart },
    ])
    const error = await waitFor('the acceptor to say why it waits', async () => {
      return tl!.acceptorStatus?.lastError ?? undefined
    })
    expect(error).toMatch(/below 0\/[0-9A-F]+ where the compute of term 3 began: waiting for a peer/)
  })
})
