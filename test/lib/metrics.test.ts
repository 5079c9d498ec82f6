import { describe, expect, it } from 'vitest'
import {
  CollectedCounter,
  Counter,
  Gauge,
  Histogram,
  MetricsRegistry,
  parseMetrics,
} from '../../src/lib/metrics.js'

describe('parseMetrics', () => {
  it('reads back every sample MetricsRegistry.render() writes, labels and all', () => {
    const reg = new MetricsRegistry()
    const c = reg.add(new Counter('x_requests_total', 'requests'))
    c.inc(3, { kind: 'get_page' })
    c.inc(1, { kind: 'nblocks' })
    const odd = 'a "quoted" back\\slash\nnewline'
    reg.add(new Gauge('x_bytes', 'bytes', () => [{ labels: { tenant_id: odd, k: 'v' }, value: 1.5e9 }]))
    reg.add(new CollectedCounter('x_hits_total', 'hits', () => [{ value: 42 }]))
    const h = reg.add(new Histogram('x_seconds', 'latency', [0.001, 0.01]))
    h.observe(0.0005)
    h.observe(0.005)
    h.observe(5)
    const samples = parseMetrics(reg.render())
    expect(samples).toEqual([
      { name: 'x_requests_total', labels: { kind: 'get_page' }, value: 3 },
      { name: 'x_requests_total', labels: { kind: 'nblocks' }, value: 1 },
      { name: 'x_bytes', labels: { tenant_id: odd, k: 'v' }, value: 1.5e9 },
      { name: 'x_hits_total', labels: {}, value: 42 },
      { name: 'x_seconds_bucket', labels: { le: '0.001' }, value: 1 },
      { name: 'x_seconds_bucket', labels: { le: '0.01' }, value: 2 },
      { name: 'x_seconds_bucket', labels: { le: '+Inf' }, value: 3 },
      { name: 'x_seconds_sum', labels: {}, value: 5.0055 },
      { name: 'x_seconds_count', labels: {}, value: 3 },
    ])
    expect(reg.render()).toContain('# TYPE x_hits_total counter')
  })

  it('skips comments and lines that are not samples, and reads +Inf and a timestamp', () => {
    expect(parseMetrics('# HELP a b\n\ngarbage line here\nup 1 1700000000000\nmax +Inf\n')).toEqual([
      { name: 'up', labels: {}, value: 1 },
      { name: 'max', labels: {}, value: Number.POSITIVE_INFINITY },
    ])
  })
})
