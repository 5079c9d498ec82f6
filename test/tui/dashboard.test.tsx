import { render } from 'ink-testing-library'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { frameData } from '../../src/control/dashboard-frame.js'
import type { DashboardSample } from '../../src/control/dashboard-sample.js'
import { App, type Selection } from '../../src/tui/app.js'
import { IngestPanel, ProcessesPanel, TimelinePanel, TimelinesPanel } from '../../src/tui/panels.js'
import { frameSource } from '../../src/tui/run.js'
import { Sparkline, sparkline } from '../../src/tui/sparkline.js'
import { dashboardSample, FEATURE, type Figures, MAIN, ZERO } from '../harness/dashboard-samples.js'

const T0 = 1_700_000_000_000
const mounted: { unmount: () => void }[] = []
const mount = (tree: Parameters<typeof render>[0]) => {
  const r = render(tree)
  mounted.push(r)
  return r
}
afterEach(() => {
  for (const r of mounted.splice(0)) r.unmount()
})

const text = (r: { lastFrame: () => string | undefined }) => r.lastFrame() ?? ''

describe('Sparkline', () => {
  it('draws ▁ to █ scaled to the largest value, nulls as gaps, the newest on the right', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█')
    expect(sparkline([5, null, 10])).toBe('▅ █')
    expect(sparkline([0, 0])).toBe('▁▁')
    expect(sparkline([1, 2], 5)).toBe('   ▅█')
    expect(sparkline([1, 2, 3, 4], 2)).toBe('▆█')
    expect(text(mount(<Sparkline values={[0, 7, 14]} />))).toBe('▁▅█')
  })
})

describe('panels on recorded samples', () => {
  it('TimelinePanel draws the LSN ladder and the lag sparklines of the selected timeline', () => {
    let frame = null as ReturnType<typeof frameData> | null
    for (let i = 0; i <= 8; i++) {
      const at = T0 + i * 1000
      // The pageserver falls behind by 1 KiB more every second.
      const last = `0/${(0x3000000 - i * 0x400).toString(16).toUpperCase()}`
      frame = frameData(
        frame,
        dashboardSample({ at, main: { compute: '0/3000000', sk: '0/3000000', last, disk: '0/2000000' } }),
        at,
      )
    }
    const out = text(
      mount(<TimelinePanel timeline={frame!.timelines.find((t) => t.timeline_id === MAIN)!} />),
    )
    const lines = out.split('\n').map((l) => l.replace(/^[│\s]+|[│\s]+$/g, ''))
    expect(lines).toContain('compute flush       0/3000000           0 B      0 s')
    expect(lines).toContain('safekeeper 1 flush  0/3000000           0 B      0 s')
    expect(lines).toContain('commit (quorum)     0/3000000           0 B   100 ms')
    expect(lines).toContain('last_record         0/2FFE000       8.0 KiB   200 ms')
    expect(lines).toContain('disk_consistent     0/2000000      16.0 MiB    4.5 s')
    expect(lines).toContain('gc cutoff           0/1000000')
    // The lag grew by the same step every second: the sparkline climbs to █.
    expect(out).toMatch(/lag bytes\s+▁▂▃▄▅▅▆▇█/)
    expect(out).toContain('wal receiver streaming, logical size 21.9 MiB')
    expect(lines).toContain('remote_consistent   0/2000000      16.0 MiB    4.5 s')
    expect(out).toContain(`timeline main (${MAIN}) on pageserver 1`)
  })

  it('TimelinesPanel names the pageserver that serves each timeline', () => {
    const s = dashboardSample({ pageservers: [1, 2], heldBy: 2 })
    const frame = frameData(null, s, s.at_ms)
    const out = text(mount(<TimelinesPanel timelines={frame.timelines} selected={MAIN} />))
    expect(out).toMatch(/▶ main\s+0\/2FFF000\s+ps 2/)
    expect(out).toMatch(/ {2}feature\s+0\/1800000\s+ps 2/)
    // The rates are the holder's, and say so.
    expect(text(mount(<IngestPanel frame={frame} />))).toContain('ingest and GetPage of pageserver 2')
  })

  it('ProcessesPanel shows a dead process with its last log line, and one that does not answer', () => {
    const s = dashboardSample()
    s.processes[0] = {
      ...s.processes[0],
      state: 'died',
      pid: null,
      started_at_ms: null,
      last_log_line: 'ERROR uncaught exception {"error":"disk full"}',
    }
    s.processes[1] = { ...s.processes[1], unreachable: 'no answer within 800 ms' }
    const out = text(mount(<ProcessesPanel processes={frameData(null, s, s.at_ms).processes} />))
    expect(out).toMatch(/pageserver\s+died\s+-\s+http 9898, pg 64000\s+-\s+last log: ERROR uncaught/)
    expect(out).toMatch(/safekeeper 1\s+running\s+4243\s+http 7677, pg 5455\s+1h02m\s+unreachable: no answer/)
    expect(out).toMatch(/compute main\s+running\s+4300\s+pg 55432\s+1m05s/)
  })
})

/** The App on recorded samples, served one per refresh with the selection the App asked for. */
function served(make: (i: number) => DashboardSample) {
  const asked: Selection[] = []
  let i = 0
  const next = frameSource(async (sel) => {
    asked.push(sel)
    return make(i++)
  })
  return { next, asked }
}

describe('App', () => {
  it('with an unreachable pageserver shows that and still the safekeepers, the computes and their ladder', async () => {
    const down = 'the pageserver is not reachable at http://127.0.0.1:9898 (ECONNREFUSED)'
    const { next } = served((i) => dashboardSample({ at: T0 + i * 1000, pageserverDown: down }))
    const r = mount(<App next={next} intervalMs={200} />)
    await vi.waitFor(() => expect(text(r)).toContain(`pageserver unreachable: ${down}`), { timeout: 10_000 })
    const out = text(r)
    expect(out).toContain(`unreachable: ${down.slice(0, 30)}`)
    expect(out).toMatch(/safekeeper 1\s+running\s+4243/)
    expect(out).toMatch(/compute main\s+running\s+4300/)
    expect(out).toMatch(/safekeeper 1 flush\s+0\/3000000/)
    expect(out).toContain('no layers to show')
  })

  it('moves the selection with tab and the arrows, asks for that timeline, and switches to the layers view with l', async () => {
    const figures = (i: number): Figures => ({ ...ZERO, ingestBytes: i * 2_000_000, ingestRecords: i * 100 })
    const { next, asked } = served((i) => dashboardSample({ at: T0 + i * 1000, figures: figures(i) }))
    const r = mount(<App next={next} intervalMs={200} />)
    await vi.waitFor(() => expect(text(r)).toMatch(/▶ main/), { timeout: 10_000 })
    expect(text(r)).toContain(`timeline main (${MAIN})`)
    await vi.waitFor(() => expect(text(r)).toMatch(/ingest\s+1\.9 MiB\/s/), { timeout: 10_000 })

    r.stdin.write('\t')
    await vi.waitFor(() => expect(text(r)).toMatch(/▶ feature/), { timeout: 10_000 })
    expect(text(r)).toContain(`timeline feature (${FEATURE})`)
    expect(text(r)).toContain('branched at 0/1800000')
    await vi.waitFor(() => expect(asked.at(-1)?.timeline_id).toBe(FEATURE), { timeout: 10_000 })

    r.stdin.write('\u001B[A')
    await vi.waitFor(() => expect(text(r)).toMatch(/▶ main/), { timeout: 10_000 })
    r.stdin.write('\u001B[B')
    await vi.waitFor(() => expect(text(r)).toMatch(/▶ feature/), { timeout: 10_000 })

    expect(text(r)).toContain('ingest and GetPage')
    r.stdin.write('l')
    await vi.waitFor(() => expect(text(r)).not.toContain('ingest and GetPage'), { timeout: 10_000 })
    expect(text(r)).toMatch(/L0 delta\s+2\s+2\.9 MiB/)
    expect(text(r)).toContain('l: main view')
    r.stdin.write('l')
    await vi.waitFor(() => expect(text(r)).toContain('ingest and GetPage'), { timeout: 10_000 })
  })

  it('shows the layer map its drawing function gives in the layers view', async () => {
    const { next } = served((i) => dashboardSample({ at: T0 + i * 1000 }))
    const draw = (l: { timeline_id: string; by_kind: unknown[] }) => [
      `MAP OF ${l.timeline_id.slice(0, 8)}`,
      '▒▒▒▒',
    ]
    const r = mount(<App next={next} intervalMs={200} drawLayerMap={draw} />)
    await vi.waitFor(() => expect(text(r)).toMatch(/▶ main/), { timeout: 10_000 })
    expect(text(r)).not.toContain('MAP OF')
    r.stdin.write('l')
    await vi.waitFor(() => expect(text(r)).toContain(`MAP OF ${MAIN.slice(0, 8)}`), { timeout: 10_000 })
  })

  it('keeps the last frame and says why when a refresh fails', async () => {
    let n = 0
    const next = frameSource(async () => {
      if (n++ === 1) throw new Error('repo config unreadable')
      return dashboardSample({ at: T0 + n * 1000 })
    })
    const r = mount(<App next={next} intervalMs={200} />)
    await vi.waitFor(() => expect(text(r)).toContain('refresh failed: repo config unreadable'), {
      timeout: 10_000,
    })
    expect(text(r)).toMatch(/▶ main/)
    await vi.waitFor(() => expect(text(r)).not.toContain('refresh failed'), { timeout: 10_000 })
  })
})
