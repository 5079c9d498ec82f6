import { describe, expect, it } from 'vitest'
import { counterDelta, frameData, HISTORY_LENGTH, p99OfDelta } from '../../src/control/dashboard-frame.js'
import {
  dashboardSample,
  FEATURE,
  type Figures,
  GETPAGE_BOUNDS,
  MAIN,
  ZERO,
} from '../harness/dashboard-samples.js'

const T0 = 1_700_000_000_000
const obs = (at: Record<number, number>) =>
  [...GETPAGE_BOUNDS, Number.POSITIVE_INFINITY].map((_, i) => at[i] ?? 0)

describe('frameData', () => {
  it('derives MB/s, records/s and GetPage/s from counter deltas over the time between samples', () => {
    const a = frameData(null, dashboardSample({ at: T0, figures: ZERO }), T0)
    expect(a.rates).toEqual({
      ingest_bytes_per_s: null,
      ingest_records_per_s: null,
      getpage_per_s: null,
      getpage_p99_seconds: null,
    })
    const f: Figures = {
      ...ZERO,
      ingestBytes: 4_000_000,
      ingestRecords: 1000,
      getpage: 500,
      hits: 90,
      misses: 10,
    }
    const b = frameData(a, dashboardSample({ at: T0 + 2000, figures: f }), T0 + 2000)
    expect(b.rates.ingest_bytes_per_s).toBe(2_000_000)
    expect(b.rates.ingest_records_per_s).toBe(500)
    expect(b.rates.getpage_per_s).toBe(250)
    expect(b.memory.hit_ratio).toBeCloseTo(0.9)
    expect(b.memory.hit_ratio_recent).toBeCloseTo(0.9)
    expect(b.rate_history.ingest_bytes_per_s).toEqual([null, 2_000_000])
  })

  it('takes GetPage p99 from the bucket deltas of this refresh only', () => {
    // Before: 1000 slow requests (0.5 s). In this refresh: 990 at <= 10 µs and 10 at <= 1 ms.
    const before: Figures = { ...ZERO, getpage: 1000, getpageObs: obs({ 9: 1000 }) }
    const after: Figures = { ...ZERO, getpage: 2000, getpageObs: obs({ 0: 990, 4: 10, 9: 1000 }) }
    const a = frameData(null, dashboardSample({ at: T0, figures: before }), T0)
    const b = frameData(a, dashboardSample({ at: T0 + 1000, figures: after }), T0 + 1000)
    expect(b.rates.getpage_p99_seconds).toBe(0.00001)
    // 20 of 1000 at 1 ms: the 99th percentile is in the 1 ms bucket.
    const more: Figures = { ...after, getpage: 3000, getpageObs: obs({ 0: 1970, 4: 30, 9: 1000 }) }
    const c = frameData(b, dashboardSample({ at: T0 + 2000, figures: more }), T0 + 2000)
    expect(c.rates.getpage_p99_seconds).toBe(0.001)
    // Nothing observed: no p99 rather than a stale one.
    const d = frameData(c, dashboardSample({ at: T0 + 3000, figures: more }), T0 + 3000)
    expect(d.rates.getpage_p99_seconds).toBeNull()
    expect(d.rates.getpage_per_s).toBe(0)
  })

  it('never gives a negative rate after a counter reset (the pageserver restarted)', () => {
    const big: Figures = {
      ...ZERO,
      ingestBytes: 9_000_000,
      ingestRecords: 9000,
      getpage: 900,
      getpageObs: obs({ 3: 900 }),
    }
    const small: Figures = {
      ...ZERO,
      ingestBytes: 1_000_000,
      ingestRecords: 100,
      getpage: 10,
      getpageObs: obs({ 1: 10 }),
    }
    const a = frameData(null, dashboardSample({ at: T0, figures: big }), T0)
    const b = frameData(a, dashboardSample({ at: T0 + 1000, figures: small }), T0 + 1000)
    expect(b.rates.ingest_bytes_per_s).toBe(1_000_000)
    expect(b.rates.ingest_records_per_s).toBe(100)
    expect(b.rates.getpage_per_s).toBe(10)
    expect(b.rates.getpage_p99_seconds).toBe(0.00005)
    expect(counterDelta(10, 3)).toBe(3)
    expect(counterDelta(null, 3)).toBeNull()
    expect(p99OfDelta(null, [{ le: 1, count: 1 }])).toBeNull()
  })

  it('keeps the last 60 samples of every history', () => {
    let frame = frameData(null, dashboardSample({ at: T0 }), T0)
    for (let i = 1; i <= 75; i++) {
      const at = T0 + i * 1000
      const f: Figures = { ...ZERO, ingestBytes: i * 1000 }
      const lsn = `0/${(0x3000000 + i * 0x100).toString(16).toUpperCase()}`
      frame = frameData(
        frame,
        dashboardSample({
          at,
          figures: f,
          main: { compute: lsn, sk: lsn, last: '0/3000000', disk: '0/2000000' },
        }),
        at,
      )
    }
    const main = frame.timelines.find((t) => t.timeline_id === MAIN)!
    expect(main.lag_bytes_history).toHaveLength(HISTORY_LENGTH)
    // The newest last: compute at 0x3000000 + 75 * 0x100, pageserver at 0x3000000.
    expect(main.lag_bytes_history.at(-1)).toBe(75 * 0x100)
    expect(main.lag_bytes_history[0]).toBe(16 * 0x100)
    expect(frame.rate_history.ingest_bytes_per_s).toHaveLength(HISTORY_LENGTH)
    expect(frame.rate_history.ingest_bytes_per_s.every((r) => r === 1000)).toBe(true)
  })

  it('builds each timeline ladder with lsnLadder from the compute, the safekeepers and the pageserver', () => {
    const s = dashboardSample({
      main: { compute: '0/3000000', sk: '0/2FFF800', last: '0/2FFF000', disk: '0/2000000' },
    })
    const frame = frameData(null, s, s.at_ms)
    const main = frame.timelines.find((t) => t.timeline_id === MAIN)!
    expect(main.branch).toBe('main')
    expect(main.ladder.map((r) => [r.name, r.lsn, r.lag_bytes])).toEqual([
      ['compute_insert', '0/3000000', null],
      ['compute_flush', '0/3000000', 0],
      ['safekeeper_flush', '0/2FFF800', 0x800],
      ['commit', '0/2FFF800', 0x800],
      ['last_record', '0/2FFF000', 0x1000],
      ['disk_consistent', '0/2000000', 0x1000000],
      ['remote_consistent', '0/2000000', 0x1000000],
      ['gc_cutoff', '0/1000000', null],
    ])
    expect(main.ladder.find((r) => r.name === 'commit')!.lag_seconds).toBe(0.1)
    const feature = frame.timelines.find((t) => t.timeline_id === FEATURE)!
    expect(feature.ladder[0].name).toBe('safekeeper_flush')
    expect(feature.ancestor_timeline_id).toBe(MAIN)
    expect(frame.layers!.by_kind).toEqual([
      { kind: 'open', count: 1, bytes: 3_145_728 },
      { kind: 'frozen', count: 0, bytes: 0 },
      { kind: 'l0', count: 2, bytes: 3_000_000 },
      { kind: 'l1', count: 0, bytes: 0 },
      { kind: 'image', count: 1, bytes: 20_000_000 },
    ])
    expect(frame.tasks).toEqual([
      { kind: 'compaction', running: 1, runs: 12, failures: 0, last_run_ago_s: 3, last_duration_s: 0.25 },
      { kind: 'gc', running: 0, runs: 2, failures: 1, last_run_ago_s: 40, last_duration_s: 0.004 },
    ])
    expect(frame.processes[0].uptime_s).toBe(3725)
  })

  it('without the pageserver still has every timeline of the config, laddered from the others', () => {
    const s = dashboardSample({ pageserverDown: 'the pageserver is not reachable (ECONNREFUSED)' })
    const frame = frameData(null, s, s.at_ms)
    expect(frame.pageservers_unreachable).toEqual([
      { name: 'pageserver', reason: 'the pageserver is not reachable (ECONNREFUSED)' },
    ])
    expect(frame.timelines.map((t) => t.branch)).toEqual(['main', 'feature'])
    expect(frame.timelines[0].ladder.map((r) => r.name)).toEqual([
      'compute_insert',
      'compute_flush',
      'safekeeper_flush',
      'commit',
    ])
    expect(frame.rates.ingest_bytes_per_s).toBeNull()
    expect(frame.layers).toBeNull()
  })

  it("with two pageservers shows the figures of the selected timeline's, each measured from its own counters", () => {
    const bytes = (n: number): Figures => ({ ...ZERO, ingestBytes: n })
    const two = { pageservers: [1, 2] }
    const a = frameData(
      null,
      dashboardSample({ ...two, at: T0, heldBy: 2, figures: bytes(1e6), otherFigures: bytes(50e6) }),
      T0,
    )
    const b = frameData(
      a,
      dashboardSample({ ...two, at: T0 + 1000, heldBy: 2, figures: bytes(3e6), otherFigures: bytes(60e6) }),
      T0 + 1000,
    )
    expect(b.timelines.map((t) => [t.branch, t.pageserver_id])).toEqual([
      ['main', 2],
      ['feature', 2],
    ])
    expect(b.figures_pageserver).toEqual({ id: 2, name: 'pageserver 2' })
    expect(b.rates.ingest_bytes_per_s).toBe(2e6)
    expect(b.processes.map((p) => p.name).slice(0, 2)).toEqual(['pageserver', 'pageserver 2'])
    // The tenant moved to pageserver 1, which had ingested 60 MB and now 70 MB: its rate is 10 MB/s,
    // from its own counters, not 67 MB/s from pageserver 2's; the sparkline starts again with it.
    const c = frameData(
      b,
      dashboardSample({ ...two, at: T0 + 2000, heldBy: 1, figures: bytes(70e6), otherFigures: bytes(3.5e6) }),
      T0 + 2000,
    )
    expect(c.timelines.map((t) => t.pageserver_id)).toEqual([1, 1])
    expect(c.figures_pageserver).toEqual({ id: 1, name: 'pageserver' })
    expect(c.rates.ingest_bytes_per_s).toBe(10e6)
    expect(c.rate_history.ingest_bytes_per_s).toEqual([10e6])
    // The ladder's pageserver rungs are the holder's, remote_consistent among them.
    expect(c.timelines[0].ladder.find((r) => r.name === 'remote_consistent')?.lsn).toBe('0/2000000')
  })
})
