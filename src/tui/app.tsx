/**
 * The live dashboard: refreshes every `intervalMs` (the next refresh is scheduled when one ends, so two
 * are never in flight), and the keys: ↑/↓ or tab (shift-tab back) select a timeline, `l` switches to
 * the layers view and back, `q` or Ctrl-C quits through ink's exit, which restores the terminal.
 */
import { Text, useApp, useInput } from 'ink'
import { useEffect, useRef, useState } from 'react'
import type { DashboardFrame, LayersFrame } from '../control/dashboard-frame.js'
import { DashboardView, type View } from './dashboard-view.js'

export type Selection = { tenant_id: string; timeline_id: string } | null

export interface AppProps {
  /** The next frame, with the layers of the selected timeline. */
  next: (selected: Selection) => Promise<DashboardFrame>
  intervalMs: number
  /** The timeline selected at start (--tenant-id, --branch); else the first one. */
  initialTimelineId?: string | null
  /**
   * Draws the layer map of the selected timeline for the layers view; without it the view shows the
   * layers-by-kind table alone.
   */
  drawLayerMap?: (layers: LayersFrame) => string[]
}

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err))

export function App({ next, intervalMs, initialTimelineId = null, drawLayerMap }: AppProps) {
  const { exit } = useApp()
  const [frame, setFrame] = useState<DashboardFrame | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [selected, setSelected] = useState<string | null>(initialTimelineId)
  const [view, setView] = useState<View>('main')
  // The loop reads the selection when it samples, without restarting on every key.
  const selection = useRef<Selection>(null)
  const frameRef = useRef<DashboardFrame | null>(null)

  const shown = frame?.timelines.some((t) => t.timeline_id === selected)
    ? selected
    : (frame?.timelines[0]?.timeline_id ?? null)
  const current = frame?.timelines.find((t) => t.timeline_id === shown)
  selection.current = current ? { tenant_id: current.tenant_id, timeline_id: current.timeline_id } : null

  useEffect(() => {
    let stopped = false
    let timer: NodeJS.Timeout | undefined
    const tick = async () => {
      const began = Date.now()
      try {
        const f = await next(selection.current)
        if (stopped) return
        frameRef.current = f
        setFrame(f)
        setError(null)
      } catch (err) {
        if (stopped) return
        setError(reason(err))
      }
      timer = setTimeout(tick, Math.max(0, intervalMs - (Date.now() - began)))
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [next, intervalMs])

  useInput((input, key) => {
    if (input === 'q' || (key.ctrl && input === 'c')) {
      exit()
      return
    }
    if (input === 'l') {
      setView((v) => (v === 'main' ? 'layers' : 'main'))
      return
    }
    const list = frameRef.current?.timelines ?? []
    if (list.length === 0) return
    const step = key.downArrow || (key.tab && !key.shift) ? 1 : key.upArrow || (key.tab && key.shift) ? -1 : 0
    if (step === 0) return
    const i = Math.max(
      0,
      list.findIndex((t) => t.timeline_id === shown),
    )
    setSelected(list[(i + step + list.length) % list.length].timeline_id)
  })

  if (!frame)
    return <Text>{error ? `zenith dashboard: ${error}` : 'zenith dashboard: reading the cluster…'}</Text>
  const layerMapLines =
    view === 'layers' && frame.layers && drawLayerMap ? drawLayerMap(frame.layers) : undefined
  return (
    <DashboardView
      frame={frame}
      selected={shown}
      view={view}
      intervalMs={intervalMs}
      error={error}
      layerMapLines={layerMapLines}
    />
  )
}
