import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { MetricsRegistry, parseMetrics } from '../../src/lib/metrics.js'
import { processMetrics } from '../../src/lib/process-metrics.js'

function scrape(): Map<string, number> {
  const reg = new MetricsRegistry()
  reg.add(processMetrics())
  return new Map(parseMetrics(reg.render()).map((s) => [s.name, s.value]))
}

describe('process metrics', () => {
  it("report this process's address space, resident memory, threads and CPU time", async () => {
    const before = scrape()
    const vsz = before.get('process_virtual_memory_bytes') ?? 0
    const rss = before.get('process_resident_memory_bytes') ?? 0
    expect(rss).toBeGreaterThan(0)
    expect(vsz).toBeGreaterThan(rss)
    // Within a factor of two of what Node itself says, so a unit mistake (kB for bytes) shows.
    const nodeRss = process.memoryUsage().rss
    expect(rss).toBeGreaterThan(nodeRss / 2)
    expect(rss).toBeLessThan(nodeRss * 2)

    const worker = new Worker('setInterval(() => {}, 1000)', { eval: true })
    try {
      await new Promise((resolve) => worker.once('online', resolve))
      expect(scrape().get('process_threads')).toBeGreaterThan(before.get('process_threads') ?? 0)
    } finally {
      await worker.terminate()
    }

    const spinUntil = performance.now() + 50
    while (performance.now() < spinUntil) {
      // Burn CPU so the counter must move.
    }
    expect(scrape().get('process_cpu_seconds_total')).toBeGreaterThanOrEqual(
      (before.get('process_cpu_seconds_total') ?? 0) + 0.04,
    )
  })
})
