/** Sparklines: a history drawn with ▁▂▃▄▅▆▇█, one cell per sample, the newest on the right. */
import { Tint } from './tint.js'

const BARS = '▁▂▃▄▅▆▇█'

/**
 * Scaled from 0 to the largest value shown, so a flat history is a flat line of ▁ and growth shows as it
 * happens; an unknown sample (null) is a gap. Only the newest `width` samples fit.
 */
export function sparkline(values: readonly (number | null)[], width: number = values.length): string {
  const shown = values.slice(-width)
  const max = Math.max(0, ...shown.map((v) => v ?? 0))
  return shown
    .map((v) => {
      if (v === null) return ' '
      if (max === 0) return BARS[0]
      return BARS[Math.min(BARS.length - 1, Math.floor((Math.max(0, v) / max) * (BARS.length - 1) + 0.5))]
    })
    .join('')
    .padStart(width, ' ')
}

export function Sparkline({ values, width }: { values: readonly (number | null)[]; width?: number }) {
  return <Tint tone="chart">{sparkline(values, width)}</Tint>
}
