/**
 * The CPU- and I/O-heavy half of L0 compaction: merge a chain of L0 delta layers, entry by entry in
 * (key, lsn) order, into L1 delta layers of about `targetSize` bytes each. Runs in a worker thread
 * (compaction-worker.ts), so it needs nothing but file paths and plain data.
 */
import { KEY_MAX, nextKey } from './key.js'
import { type LayerEntry, LayerFileReader, LayerFileWriter } from './layer-file.js'
import { PageCache } from './page-cache.js'

export interface MergeJob {
  inputs: string[]
  dir: string
  tenantId: string
  timelineId: string
  targetSize: number
  lsnStart: number
  lsnEnd: number
}

export interface MergeResult {
  outputs: string[]
  entries: number
}

/**
 * Never splits one key's versions between two files. Output key ranges run from each file's first key to
 * the next file's first key (the last one to just past its last key), so no output spans the whole key
 * space and none is mistaken for an L0.
 */
export function mergeLayers(job: MergeJob): MergeResult {
  // Each input is streamed once; a small cache is enough.
  const cache = new PageCache(256)
  const readers = job.inputs.map((p) => LayerFileReader.open(p, cache))
  const outputs: string[] = []
  let writer: LayerFileWriter | null = null
  let entries = 0
  try {
    const iters = readers.map((r) => r.entries())
    const heads: (LayerEntry | null)[] = iters.map((it) => it.next().value ?? null)
    let lastKey: Buffer | null = null
    const newWriter = (keyStart: Buffer) =>
      new LayerFileWriter({
        dir: job.dir,
        kind: 'delta',
        tenantId: job.tenantId,
        timelineId: job.timelineId,
        keyStart,
        keyEnd: KEY_MAX,
        lsnStart: job.lsnStart,
        lsnEnd: job.lsnEnd,
      })
    for (;;) {
      let min = -1
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]
        if (!h) continue
        if (min < 0) {
          min = i
          continue
        }
        const m = heads[min]!
        const c = Buffer.compare(h.key, m.key)
        if (c < 0 || (c === 0 && h.lsn < m.lsn)) min = i
      }
      if (min < 0) break
      const e = heads[min]!
      heads[min] = iters[min].next().value ?? null
      const newKey = lastKey === null || !lastKey.equals(e.key)
      if (writer && newKey && writer.bytesWritten >= job.targetSize) {
        outputs.push(writer.finish({ keyEnd: e.key }).path)
        writer = null
      }
      if (!writer) writer = newWriter(e.key)
      writer.add(e.key, e.lsn, e.value, e.willInit, e.image)
      lastKey = e.key
      entries++
    }
    if (writer) outputs.push(writer.finish({ keyEnd: nextKey(lastKey!) }).path)
    writer = null
    return { outputs, entries }
  } finally {
    writer?.abort()
    for (const r of readers) r.close()
  }
}
