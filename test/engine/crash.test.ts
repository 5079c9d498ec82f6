/**
 * Kill -9 in the middle of ingest, flush and compaction, 20 times over the same repository: after each
 * reopening, everything up to the last disk_consistent_lsn the process reported reads back exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/engine/repository.js'
import { expectedAt, FIRST_LSN, KEYS, keyOf } from '../harness/crash-workload.js'
import { testRedo } from '../harness/engine.js'
import { runUntilKilled } from '../harness/kill-child.js'
import { randomInt } from '../harness/random.js'

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.ts')
const TRIALS = 20
const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-crash-'))

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the child until `killAfterMs` after it is ready, then SIGKILLs it; returns the last dcl it printed. */
async function runAndKill(
  tenantId: string,
  timelineId: string,
  killAfterMs: number,
): Promise<{ dcl: number }> {
  const { last } = await runUntilKilled(CHILD, [dir, tenantId, timelineId], (what, _, kill) => {
    if (what === 'ready') setTimeout(kill, killAfterMs)
  })
  return { dcl: Number(last.get('dcl') ?? -1) }
}

describe('crash safety', () => {
  it(`keeps everything up to the reported disk_consistent_lsn across ${TRIALS} SIGKILLs`, async () => {
    const config = {
      checkpoint_distance: 64 * 1024,
      compaction_target_size: 96 * 1024,
      compaction_threshold: 3,
      image_creation_threshold: 2,
      compaction_period: '50 ms',
      gc_period: '0 s',
    }
    let repo = await Repository.open(dir, { redo: testRedo(), background: false })
    const tenant = repo.createTenant({ config })
    const tl = tenant.createTimeline(FIRST_LSN)
    const ids = [tenant.tenantId, tl.timelineId] as const
    await repo.close()

    const next = randomInt(31337)
    let previous = FIRST_LSN
    const compactions: number[] = []
    for (let trial = 0; trial < TRIALS; trial++) {
      const { dcl } = await runAndKill(ids[0], ids[1], 150 + next(2500))
      repo = await Repository.open(dir, { redo: testRedo(), background: false })
      const t = repo.tenant(ids[0]).timeline(ids[1])
      const durable = Math.max(dcl, previous)
      expect(t.diskConsistentLsn).toBeGreaterThanOrEqual(durable)
      expect(t.lastRecordLsn).toBe(t.diskConsistentLsn)
      for (const at of [durable, FIRST_LSN + 8 * KEYS + next(Math.max(1, durable - FIRST_LSN - 8 * KEYS))]) {
        if (at < FIRST_LSN + 8 * KEYS) continue
        const want = expectedAt(at)
        for (let k = 0; k < KEYS; k++) {
          const got = t.get(keyOf(k), at)
          if (!got?.equals(want[k]))
            expect({ trial, at, k, got: got?.toString('hex') }).toEqual({
              trial,
              at,
              k,
              got: want[k].toString('hex'),
            })
        }
      }
      compactions.push(t.layerInfo().filter((l) => l.kind === 'delta' && !l.l0).length)
      previous = t.diskConsistentLsn
      await repo.close({ flush: false })
    }
    // The kills landed while layers were being compacted, not only while writing.
    expect(compactions.some((n) => n > 0)).toBe(true)
    expect(previous).toBeGreaterThan(FIRST_LSN + 8 * KEYS * 4)
  }, 300_000)
})
