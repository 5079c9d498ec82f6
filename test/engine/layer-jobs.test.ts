/**
 * Layer jobs in worker threads: more merges at once than there are cores all finish, while no more
 * worker threads than cores exist at any moment (counted in /proc/self/status, not by the gate itself).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { MergeResult } from '../../src/engine/compaction-merge.js'
import { encodeKey, KEY_MAX, KEY_MIN } from '../../src/engine/key.js'
import { LayerFileWriter } from '../../src/engine/layer-file.js'
import { layerWorkers, MAX_LAYER_WORKERS, runLayerJobInWorker } from '../../src/engine/layer-jobs.js'
import { generateId } from '../../src/lib/ids.js'

const root = mkdtempSync(path.join(os.tmpdir(), 'zenith-layer-jobs-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const KEYS = 2000
const tenantId = generateId()
const timelineId = generateId()

/** An L0 delta layer over the whole key space: one version of each key at lsnStart + 8 + its number. */
function writeL0(dir: string, lsnStart: number, lsnEnd: number): string {
  const w = new LayerFileWriter({
    dir,
    kind: 'delta',
    tenantId,
    timelineId,
    keyStart: KEY_MIN,
    keyEnd: KEY_MAX,
    lsnStart,
    lsnEnd,
  })
  const value = Buffer.alloc(100, lsnStart & 0xff)
  for (let i = 0; i < KEYS; i++) {
    const key = encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: i })
    w.add(key, lsnStart + 8 + i, value, false)
  }
  return w.finish().path
}

const threads = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1])

describe('layer jobs', () => {
  it('run at most one worker per core at a time, and every job queued behind them still finishes', async () => {
    const jobs = MAX_LAYER_WORKERS * 2 + 2
    const inputs = Array.from({ length: jobs }, (_, j) => {
      const dir = mkdtempSync(path.join(root, `job-${j}-`))
      return { dir, paths: [writeL0(dir, 0x1000, 0x10000), writeL0(dir, 0x10000, 0x20000)] }
    })
    const merge = ({ dir, paths }: { dir: string; paths: string[] }, j: number) =>
      runLayerJobInWorker<MergeResult>(
        {
          kind: 'merge',
          inputs: paths,
          dir,
          tenantId,
          timelineId,
          targetSize: 1 << 30,
          lsnStart: 0x1000,
          lsnEnd: 0x20000,
        },
        `merge ${j}`,
      )
    /** The most threads above the count at the start while `run` runs. */
    const threadsAdded = async (run: () => Promise<MergeResult[]>) => {
      const before = threads()
      let most = before
      const sampler = setInterval(() => {
        most = Math.max(most, threads())
      }, 2)
      try {
        for (const r of await run()) expect([r.outputs.length, r.entries]).toEqual([1, 2 * KEYS])
      } finally {
        clearInterval(sampler)
      }
      return most - before
    }
    // A worker may bring threads of its own (from sources, tsx's loader thread): count one first.
    const perWorker = await threadsAdded(async () => [await merge(inputs[0], 0)])
    expect(perWorker).toBeGreaterThan(0)
    const added = await threadsAdded(() =>
      Promise.all(inputs.slice(1).map((input, j) => merge(input, j + 1))),
    )
    expect(added).toBeLessThanOrEqual(MAX_LAYER_WORKERS * perWorker)
    expect(layerWorkers()).toEqual({ running: 0, waiting: 0, peak: MAX_LAYER_WORKERS })
  })
})
