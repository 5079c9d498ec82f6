/**
 * The dashboard's panels, each drawing one part of a DashboardFrame. Every line is laid out as text of
 * fixed-width columns, so the screen reads the same in a terminal, in `--once` output and in tests.
 */
import { Box, Text } from 'ink'
import type { ReactNode } from 'react'
import type { DashboardFrame, LayersFrame, TimelineFrame } from '../control/dashboard-frame.js'
import { LAYER_KIND_NAMES } from '../control/layers.js'
import type { LadderRung } from '../control/lsn-ladder.js'
import { countRate, dash, percent, rateOf, seconds, sizeOrDash, uptime } from './format.js'
import { Sparkline } from './sparkline.js'
import { Tint } from './tint.js'

/** Samples a sparkline shows: the minute HISTORY_LENGTH keeps. */
const SPARK_WIDTH = 60

export function Panel({
  title,
  children,
  width,
}: {
  title: string
  children: ReactNode
  width?: number | string
}) {
  return (
    <Box
      flexDirection="column"
      borderStyle="round"
      paddingX={1}
      width={width}
      flexGrow={width ? 0 : 1}
      flexShrink={width ? 0 : 1}
    >
      <Tint tone="title">{title}</Tint>
      {children}
    </Box>
  )
}

const cols = (cells: readonly [string, number][]) =>
  cells
    .map(([t, w]) => t.padEnd(w))
    .join(' ')
    .trimEnd()

export function ProcessesPanel({ processes }: { processes: DashboardFrame['processes'] }) {
  return (
    <Panel title="processes">
      <Tint tone="dim">
        {cols([
          ['name', 16],
          ['state', 8],
          ['pid', 7],
          ['ports', 20],
          ['uptime', 7],
        ])}
      </Tint>
      {processes.map((p) => {
        const tone =
          p.state === 'running' ? (p.unreachable ? 'warn' : 'good') : p.state === 'died' ? 'bad' : 'dim'
        const note =
          p.state === 'died'
            ? `last log: ${p.last_log_line ?? '(empty)'}`
            : p.unreachable
              ? `unreachable: ${p.unreachable}`
              : ''
        return (
          <Text key={p.name} wrap="truncate-end">
            {p.name.padEnd(16)} <Tint tone={tone}>{p.state.padEnd(8)}</Tint>{' '}
            {cols([
              [p.pid === null ? dash : String(p.pid), 7],
              [p.ports.join(', '), 20],
              [uptime(p.uptime_s), 7],
            ]).padEnd(36)}{' '}
            <Tint tone={p.state === 'died' ? 'bad' : 'warn'}>{note}</Tint>
          </Text>
        )
      })}
    </Panel>
  )
}

export const timelineLabel = (t: TimelineFrame) => t.branch ?? t.timeline_id.slice(0, 8)

export function TimelinesPanel({
  timelines,
  selected,
}: {
  timelines: TimelineFrame[]
  selected: string | null
}) {
  return (
    <Panel title="timelines (↑/↓ tab)" width={38}>
      {timelines.length === 0 ? <Text>none</Text> : null}
      {timelines.map((t) => {
        const last = t.ladder.find((r) => r.name === 'last_record')?.lsn ?? dash
        // Which pageserver serves it: after a migration the same branch is on another.
        const line = `${timelineLabel(t).padEnd(14)} ${last.padEnd(11)} ps ${t.pageserver_id}`
        return t.timeline_id === selected ? (
          <Text key={t.timeline_id}>
            ▶ <Tint tone="selected">{line}</Tint>
          </Text>
        ) : (
          <Text key={t.timeline_id}>{`  ${line}`}</Text>
        )
      })}
    </Panel>
  )
}

const RUNG_LABEL: Record<LadderRung['name'], string> = {
  compute_insert: 'compute insert',
  compute_flush: 'compute flush',
  safekeeper_flush: 'safekeeper flush',
  commit: 'commit (quorum)',
  last_record: 'last_record',
  disk_consistent: 'disk_consistent',
  remote_consistent: 'remote_consistent',
  gc_cutoff: 'gc cutoff',
}

export function ladderLine(r: LadderRung): string {
  const name = r.name === 'safekeeper_flush' ? `safekeeper ${r.safekeeper_id} flush` : RUNG_LABEL[r.name]
  const lag = r.lag_bytes === null ? '' : sizeOrDash(r.lag_bytes)
  const secs = r.name === 'gc_cutoff' || r.name === 'compute_insert' ? '' : seconds(r.lag_seconds)
  return `${name.padEnd(19)} ${(r.lsn ?? 'unknown').padEnd(12)} ${lag.padStart(10)} ${secs.padStart(8)}`.trimEnd()
}

export function TimelinePanel({ timeline }: { timeline: TimelineFrame | null }) {
  if (!timeline) return <Panel title="timeline">{<Text>no timeline selected</Text>}</Panel>
  const t = timeline
  return (
    <Panel title={`timeline ${timelineLabel(t)} (${t.timeline_id}) on pageserver ${t.pageserver_id}`}>
      <Text wrap="truncate-end">
        {`wal receiver ${t.walreceiver_status ?? dash}, logical size ${sizeOrDash(t.logical_size)}`}
      </Text>
      {t.ancestor_timeline_id ? (
        <Text wrap="truncate-end">{`branched at ${t.ancestor_lsn} from ${t.ancestor_timeline_id.slice(0, 8)}`}</Text>
      ) : null}
      <Tint tone="dim">{`${'LSN ladder'.padEnd(19)} ${'lsn'.padEnd(12)} ${'lag'.padStart(10)} ${'lag s'.padStart(8)}`}</Tint>
      {t.ladder.map((r) => (
        <Text key={`${r.name}${r.safekeeper_id ?? ''}`}>{ladderLine(r)}</Text>
      ))}
      <Text>
        {'lag bytes'.padEnd(12)}
        <Sparkline values={t.lag_bytes_history} width={SPARK_WIDTH} />
      </Text>
      <Text>
        {'lag seconds'.padEnd(12)}
        <Sparkline values={t.lag_seconds_history} width={SPARK_WIDTH} />
      </Text>
    </Panel>
  )
}

export function IngestPanel({ frame }: { frame: DashboardFrame }) {
  const { rates: r, rate_history: h } = frame
  const row = (label: string, value: string, values: (number | null)[]) => (
    <Text>
      {label.padEnd(14)}
      {value.padStart(12)} <Sparkline values={values} width={SPARK_WIDTH} />
    </Text>
  )
  return (
    <Panel title={`ingest and GetPage of ${frame.figures_pageserver.name}`}>
      {row('ingest', rateOf(r.ingest_bytes_per_s), h.ingest_bytes_per_s)}
      {row('records', countRate(r.ingest_records_per_s), h.ingest_records_per_s)}
      {row('GetPage', countRate(r.getpage_per_s), h.getpage_per_s)}
      {row('GetPage p99', seconds(r.getpage_p99_seconds), h.getpage_p99_seconds)}
    </Panel>
  )
}

export function MemoryPanel({ memory, of }: { memory: DashboardFrame['memory']; of: string }) {
  const m = memory
  const share =
    m.open_layer_bytes !== null && m.budget_bytes ? ` (${percent(m.open_layer_bytes / m.budget_bytes)})` : ''
  return (
    <Panel title={`memory of ${of}`} width={46}>
      <Text>{`open layers ${sizeOrDash(m.open_layer_bytes)} / ${sizeOrDash(m.budget_bytes)}${share}`}</Text>
      <Text>{`page cache  ${sizeOrDash(m.page_cache_bytes)}`}</Text>
      <Text>{`hit ratio   ${percent(m.hit_ratio)}, this refresh ${percent(m.hit_ratio_recent)}`}</Text>
    </Panel>
  )
}

export function TasksPanel({ tasks, of }: { tasks: DashboardFrame['tasks']; of: string }) {
  return (
    <Panel title={`background tasks of ${of}`}>
      <Tint tone="dim">
        {cols([
          ['kind', 13],
          ['running', 7],
          ['runs', 6],
          ['failed', 6],
          ['last run', 9],
          ['took', 8],
        ])}
      </Tint>
      {tasks.length === 0 ? <Text>none yet</Text> : null}
      {tasks.map((t) => (
        <Text key={t.kind}>
          {`${[
            [t.kind, 13],
            [String(t.running), 7],
            [String(t.runs), 6],
          ]
            .map(([v, w]) => (v as string).padEnd(w as number))
            .join(' ')} `}
          <Tint tone={t.failures > 0 ? 'bad' : undefined}>{String(t.failures).padEnd(6)}</Tint>{' '}
          {cols([
            [t.last_run_ago_s === null ? dash : `${uptime(t.last_run_ago_s)} ago`, 9],
            [seconds(t.last_duration_s), 8],
          ])}
        </Text>
      ))}
    </Panel>
  )
}

export function LayersPanel({ layers, name }: { layers: LayersFrame | null; name: string | null }) {
  if (!layers) return <Panel title="layers">{<Text>no layers to show</Text>}</Panel>
  const total = layers.by_kind.reduce((n, k) => n + k.count, 0)
  const bytes = layers.by_kind.reduce((n, k) => n + k.bytes, 0)
  return (
    <Panel title={`layers of ${name ?? layers.timeline_id}`}>
      <Tint tone="dim">{`${'kind'.padEnd(16)} ${'count'.padStart(6)} ${'bytes'.padStart(11)}`}</Tint>
      {layers.by_kind.map((k) => (
        <Text
          key={k.kind}
        >{`${LAYER_KIND_NAMES[k.kind].padEnd(16)} ${String(k.count).padStart(6)} ${sizeOrDash(k.bytes).padStart(11)}`}</Text>
      ))}
      <Text>{`${'all'.padEnd(16)} ${String(total).padStart(6)} ${sizeOrDash(bytes).padStart(11)}`}</Text>
    </Panel>
  )
}

/** The layer map drawing across the whole screen, one string per line; lines never wrap. */
export function LayerMapPanel({ lines }: { lines: string[] }) {
  return (
    <Panel title="layer map (keys across, LSNs up)">
      {lines.length === 0 ? <Text>no layers to draw</Text> : null}
      {lines.map((l, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the lines of a drawing have no identity but their row
        <Text key={i} wrap="truncate-end">
          {l}
        </Text>
      ))}
    </Panel>
  )
}
