import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SafekeeperMetrics } from '../../src/safekeeper/safekeeper-metrics.js'
import { SkTimeline } from '../../src/safekeeper/timeline.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function timeline(maxWriteLag: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-relay-'))
  dirs.push(dir)
  return SkTimeline.create(
    dir,
    {
      tenantId: 'e5'.repeat(16),
      timelineId: 'f6'.repeat(16),
      systemId: '7300000000000000001',
      pgTimeline: 1,
      walSegSize: 16 * 1024 * 1024,
      startLsn: 0x1000000,
    },
    {
      log: () => {},
      metrics: new SafekeeperMetrics(),
      applicationName: 'sk1',
      members: 3,
      maxWriteLag,
      maxFlushLag: 0,
    },
  )
}

const feedback = (lastReceivedLsn: number, replyTimeUs: number) => ({
  lastReceivedLsn,
  diskConsistentLsn: lastReceivedLsn,
  remoteConsistentLsn: lastReceivedLsn,
  currentLogicalSize: 0,
  replyTimeUs,
})

describe('pageserver feedback relayed by peers', () => {
  it('adopts the newest feedback a peer heard, so backpressure holds where the pageserver does not read', async () => {
    const tl = await timeline(1024)
    expect(tl.pageserverTooFarBehind()).toBe(false)
    tl.state = { ...tl.state, commitLsn: 0x1100000 }
    const peer = { term: 0, lastLogTerm: 0, flushLsn: 0x1100000, seenAt: Date.now(), id: 2, pgAddr: null }
    tl.peerStatus('127.0.0.1:7678', { ...peer, pageserverFeedback: feedback(0x1000000, 10) })
    expect(tl.state.pageserverFeedback?.lastReceivedLsn).toBe(0x1000000)
    expect(tl.pageserverTooFarBehind()).toBe(true)
    // An older report does not replace a newer one.
    tl.peerStatus('127.0.0.1:7679', { ...peer, pageserverFeedback: feedback(0x1100000, 5) })
    expect(tl.state.pageserverFeedback?.replyTimeUs).toBe(10)
    tl.peerStatus('127.0.0.1:7679', { ...peer, pageserverFeedback: feedback(0x1100000, 20) })
    expect(tl.pageserverTooFarBehind()).toBe(false)
    await tl.close()
  })
})
