/** One screen of the dashboard, drawn from a frame: the main view, or the layers view (`l`). */
import { Box, Text } from 'ink'
import type { DashboardFrame } from '../control/dashboard-frame.js'
import {
  IngestPanel,
  LayerMapPanel,
  LayersPanel,
  MemoryPanel,
  ProcessesPanel,
  TasksPanel,
  TimelinePanel,
  TimelinesPanel,
  timelineLabel,
} from './panels.js'
import { Tint } from './tint.js'

export type View = 'main' | 'layers'

export interface DashboardViewProps {
  frame: DashboardFrame
  /** The selected timeline's id. */
  selected: string | null
  view: View
  /** Refresh period, shown in the header. */
  intervalMs: number
  /** Why the last refresh failed, if it did: the screen keeps the frame before it. */
  error?: string | null
  /** The layer map drawing of the selected timeline for the layers view, one string per line. */
  layerMapLines?: string[]
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19)

export function DashboardView({
  frame,
  selected,
  view,
  intervalMs,
  error,
  layerMapLines,
}: DashboardViewProps) {
  const timeline = frame.timelines.find((t) => t.timeline_id === selected) ?? null
  const layersOf = frame.timelines.find((t) => t.timeline_id === frame.layers?.timeline_id)
  const layersName = layersOf ? timelineLabel(layersOf) : null
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Tint tone="title">zenith dashboard</Tint>
        {`  ${clock(frame.at_ms)} UTC, every ${intervalMs / 1000} s   ↑/↓ tab: timeline  l: ${view === 'layers' ? 'main view' : 'layers'}  q: quit`}
      </Text>
      {error ? <Tint tone="bad">{`refresh failed: ${error}`}</Tint> : null}
      {frame.pageservers_unreachable.map((p) => (
        <Tint key={p.name} tone="bad">{`${p.name} unreachable: ${p.reason}`}</Tint>
      ))}
      <ProcessesPanel processes={frame.processes} />
      <Box>
        <TimelinesPanel timelines={frame.timelines} selected={selected} />
        {view === 'layers' ? (
          <LayersPanel layers={frame.layers} name={layersName} />
        ) : (
          <TimelinePanel timeline={timeline} />
        )}
      </Box>
      {view === 'layers' && layerMapLines ? <LayerMapPanel lines={layerMapLines} /> : null}
      {view === 'main' ? (
        <>
          <Box>
            <IngestPanel frame={frame} />
            <MemoryPanel memory={frame.memory} of={frame.figures_pageserver.name} />
          </Box>
          <Box>
            <TasksPanel tasks={frame.tasks} of={frame.figures_pageserver.name} />
            <LayersPanel layers={frame.layers} name={layersName} />
          </Box>
        </>
      ) : null}
    </Box>
  )
}
