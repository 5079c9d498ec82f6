/**
 * The background work of a timeline as the pageserver's log shows it: one info line per flush,
 * compaction, image layer creation and GC that did something, through the real logger and line format.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeKey } from '../../src/engine/key.js'
import { Repository } from '../../src/engine/repository.js'
import type { Timeline } from '../../src/engine/timeline.js'
import { createLogger, type LogLevel } from '../../src/lib/log.js'
import { testRedo } from '../harness/engine.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const key = (i: number) => encodeKey({ field1: 0, field2: 1663, field3: 5, field4: 1, field5: 0, field6: i })

function writePages(tl: Timeline, count: number, fill: number): void {
  let lsn = tl.lastRecordLsn
  const writes = []
  for (let i = 0; i < count; i++) {
    lsn += 8
    writes.push({ key: key(i), lsn, value: { kind: 'image' as const, page: Buffer.alloc(8192, fill) } })
  }
  tl.ingest(writes, lsn)
}

/** A repository whose log lines, formatted as the pageserver writes them, land in `lines`. */
async function openRepo(level: LogLevel) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zenith-bglog-'))
  dirs.push(dir)
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk).trimEnd())
      done()
    },
  })
  const repo = await Repository.open(dir, {
    redo: testRedo(),
    background: false,
    log: createLogger({ stream }, level),
  })
  const tenant = repo.createTenant({ config: { pitr_interval: '0 s', gc_horizon: 0 } })
  return { repo, tenant, tl: tenant.createTimeline(0x1000000), lines }
}

const LSN = '[0-9A-F]+/[0-9A-F]+'
const linesWith = (lines: string[], msg: string) => lines.filter((l) => l.includes(` ${msg} `))

describe('background work in the log', () => {
  it('logs each flush, compaction, image creation and GC at info with what it did and how long it took', async () => {
    const { repo, tenant, tl, lines } = await openRepo('info')
    const ids = `tenantId=${tenant.tenantId} timelineId=${tl.timelineId}`
    writePages(tl, 20, 1)
    await tl.checkpoint()
    writePages(tl, 20, 2)
    await tl.checkpoint()

    const flushes = linesWith(lines, 'flush done')
    expect(flushes).toHaveLength(2)
    const l0 = tl.layers.l0()
    for (const [i, line] of flushes.entries()) {
      expect(line).toMatch(
        new RegExp(`^\\S+Z INFO  flush done ${ids} layer=\\S+ lsn=${LSN}-${LSN} bytes=\\d+ ms=\\d+$`),
      )
      expect(line).toContain(`layer=${path.basename(l0[i].path)}`)
      expect(line).toContain(`bytes=${l0[i].fileSize}`)
    }
    expect(flushes[0]).toContain('lsn=0/1000001-0/10000A1')

    await tenant.compact(tl, true)
    const [compaction] = linesWith(lines, 'compaction done')
    expect(compaction).toMatch(
      new RegExp(
        `INFO  compaction done ${ids} lsn=${LSN}-${LSN} l0_in=2 l1_out=[1-9]\\d* entries=40 bytes_in=${l0[0].fileSize + l0[1].fileSize} bytes_out=\\d+ ms=\\d+$`,
      ),
    )
    const [images] = linesWith(lines, 'image layers created')
    expect(images).toMatch(
      new RegExp(
        `INFO  image layers created ${ids} lsn=${LSN} count=[1-9]\\d* partitions=\\d+ keys=20 bytes=[1-9]\\d* ms=\\d+$`,
      ),
    )

    // The L1 layers end at the tip; once newer WAL is flushed, the cutoff passes them and the image covers them.
    writePages(tl, 20, 3)
    await tl.checkpoint()
    const gc = await tenant.gc(tl)
    expect(gc.removed).toBeGreaterThan(0)
    const [gcLine] = linesWith(lines, 'gc done')
    expect(gcLine).toMatch(
      new RegExp(
        `INFO  gc done ${ids} cutoff=${LSN} layers_total=\\d+ layers_removed=${gc.removed} bytes_removed=[1-9]\\d* needed_by_cutoff=\\d+ needed_by_branches=0 ms=\\d+$`,
      ),
    )

    // Runs that find nothing to do stay out of an info log.
    const before = lines.length
    await tenant.compact(tl)
    await tenant.gc(tl)
    expect(lines.slice(before)).toEqual([])
    await repo.close()
  })

  it('logs runs that did nothing at debug', async () => {
    const { repo, tenant, tl, lines } = await openRepo('debug')
    await tenant.compact(tl)
    await tenant.gc(tl)
    expect(linesWith(lines, 'compaction skipped')[0]).toMatch(
      /DEBUG compaction skipped .* l0=0 threshold=10$/,
    )
    expect(linesWith(lines, 'image layers created')[0]).toMatch(/DEBUG image layers created .* count=0 /)
    expect(linesWith(lines, 'gc done')[0]).toMatch(/DEBUG gc done .* layers_removed=0 bytes_removed=0 /)
    await repo.close()
  })
})
