/**
 * What `zenith dashboard` runs: the live screen on a terminal, or one frame as plain text (`--once`) or
 * as data (`--json`). Frames come from sampleCluster and frameData, one sample per refresh.
 */
import { stripVTControlCharacters } from 'node:util'
import { render, renderToString } from 'ink'
import { drawLayerMapText, MIN_TEXT_WIDTH } from '../cli/layer-map-text.js'
import { type DashboardFrame, frameData, type LayersFrame } from '../control/dashboard-frame.js'
import { type DashboardSample, sampleCluster } from '../control/dashboard-sample.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { App, type Selection } from './app.js'
import { DashboardView } from './dashboard-view.js'
import { ColorOn } from './tint.js'

export class DashboardError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'DashboardError'
}

/** The frames of consecutive samples: each frame's rates and histories come from the one before. */
export function frameSource(
  sample: (selected: Selection) => Promise<DashboardSample>,
  now: () => number = Date.now,
): (selected: Selection) => Promise<DashboardFrame> {
  let prev: DashboardFrame | null = null
  return async (selected) => {
    prev = frameData(prev, await sample(selected), now())
    return prev
  }
}

export interface DashboardOptions {
  repoDir: string
  intervalMs: number
  initialTimelineId?: string | null
}

const sampler = (repoDir: string) => (selected: Selection) => sampleCluster(repoDir, { selected })

/**
 * One frame, from two samples `intervalMs` apart so that it has rates, of the timeline asked for (else
 * the first); `text` is the screen as plain text, `columns` wide.
 */
export async function dashboardOnce(
  opts: DashboardOptions & { columns: number },
): Promise<{ frame: DashboardFrame; text: string }> {
  const next = frameSource(sampler(opts.repoDir))
  const first = await next(null)
  const pick = first.timelines.find((t) => t.timeline_id === opts.initialTimelineId) ?? first.timelines[0]
  const selected = pick ? { tenant_id: pick.tenant_id, timeline_id: pick.timeline_id } : null
  await new Promise((r) => setTimeout(r, opts.intervalMs))
  const frame = await next(selected)
  const text = renderToString(
    <ColorOn.Provider value={false}>
      <DashboardView
        frame={frame}
        selected={selected?.timeline_id ?? null}
        view="main"
        intervalMs={opts.intervalMs}
      />
    </ColorOn.Provider>,
    { columns: opts.columns },
  )
  return { frame, text: stripVTControlCharacters(text) }
}

/** The layers view's map: across the screen inside its panel's border and padding, 16 rows high. */
function drawSmallLayerMap(layers: LayersFrame, color: boolean): string[] {
  if (layers.info.historic_layers.length + layers.info.in_memory_layers.length === 0) return []
  const width = Math.max(MIN_TEXT_WIDTH, (process.stdout.columns ?? 100) - 4)
  return drawLayerMapText(
    { ...layers.info, markers: layers.markers, last_record_lsn: layers.last_record_lsn ?? undefined },
    { width, height: 16, color },
  )
}

/** The live screen until `q` or Ctrl-C; needs a terminal on stdin and stdout. */
export async function runDashboard(opts: DashboardOptions & { color: boolean }): Promise<void> {
  if (!process.stdout.isTTY || !process.stdin.isTTY)
    // The message says what to do instead: no hint line, so a script sees one line.
    throw new DashboardError('zenith dashboard needs a terminal; use --once or --json')
  const app = render(
    <ColorOn.Provider value={opts.color}>
      <App
        next={frameSource(sampler(opts.repoDir))}
        intervalMs={opts.intervalMs}
        initialTimelineId={opts.initialTimelineId}
        drawLayerMap={(layers) => drawSmallLayerMap(layers, opts.color)}
      />
    </ColorOn.Provider>,
    { exitOnCtrlC: true },
  )
  await app.waitUntilExit()
  // The screen is restored; a refresh still in flight (a request waiting on its timeout, an idle
  // keep-alive socket) must not hold the quit: a person pressing q expects the prompt back at once.
  setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref()
}
