/**
 * commit_lsn of a safekeeper that is the whole quorum (no peers): its flush LSN is committed, also when
 * the flush LSN moves without new WAL being acknowledged — the fsync of a vote, the end-of-WAL scan of
 * a restart. The pageserver reads only up to commit_lsn, and an election waits for it to reach the start
 * LSN, so a commit_lsn left behind stalls the next compute start for good (found by the fault soak).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import { SafekeeperMetrics } from '../../src/safekeeper/safekeeper-metrics.js'
import { SkTimeline } from '../../src/safekeeper/timeline.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'

const fx = loadWalFixture()
const BYTES = fx.bytes()
const START = parseLsn(fx.start)
const FIRST = parseLsn(fx.records[0].lsn)
/** Within the first segment, whose long page header (and system id) the store never sees. */
const UNTIL = parseLsn(fx.records[200].lsn)
const wal = (from: Lsn, to: Lsn) => Buffer.from(BYTES.subarray(from - START, to - START))

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const env = {
  log: () => {},
  metrics: new SafekeeperMetrics(),
  applicationName: 'sk1',
  members: 1,
  maxWriteLag: 0,
  maxFlushLag: 0,
}

async function lonelyTimeline(): Promise<SkTimeline> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-commit-'))
  dirs.push(dir)
  return SkTimeline.create(
    dir,
    {
      tenantId: 'c3'.repeat(16),
      timelineId: 'd4'.repeat(16),
      systemId: '7300000000000000001',
      pgTimeline: 1,
      walSegSize: fx.segmentSize,
      startLsn: FIRST,
    },
    env,
  )
}

describe('commit_lsn of a safekeeper without peers', () => {
  it('reaches the WAL a vote makes durable, which an acceptor cut off mid-batch left unsynced', async () => {
    const tl = await lonelyTimeline()
    try {
      tl.store.write(FIRST, wal(FIRST, UNTIL))
      expect(tl.commitLsn).toBe(FIRST)
      const vote = await tl.vote(1)
      expect(vote.voteGiven).toBe(true)
      expect(vote.flushLsn).toBeGreaterThan(FIRST)
      expect(tl.commitLsn).toBe(vote.flushLsn)
    } finally {
      await tl.close()
    }
  })

  it('reaches what the end-of-WAL scan finds after a restart, beyond the commit_lsn on disk', async () => {
    const tl = await lonelyTimeline()
    tl.store.write(FIRST, wal(FIRST, UNTIL))
    // Synced by the store alone: the control file keeps the old commit_lsn, as after a crash within the
    // second before its next write.
    await tl.store.flush()
    const flushed = tl.store.endRecordLsn
    await tl.close()
    const reopened = await SkTimeline.open(tl.dir, env)
    try {
      expect(reopened.flushLsn).toBe(flushed)
      expect(reopened.commitLsn).toBe(flushed)
    } finally {
      await reopened.close()
    }
  })
})
