/**
 * Colour for the dashboard's text, on only when the CLI's output writer would use it (a TTY, no
 * NO_COLOR): ink's own colour detection does not know NO_COLOR, so every styled text goes through Tint.
 */
import { Text } from 'ink'
import { createContext, type ReactNode, useContext } from 'react'

export const ColorOn = createContext(true)

export type Tone = 'good' | 'bad' | 'warn' | 'dim' | 'title' | 'chart' | 'selected'

const STYLE: Record<Tone, { color?: string; bold?: boolean; dimColor?: boolean; inverse?: boolean }> = {
  good: { color: 'green' },
  bad: { color: 'red', bold: true },
  warn: { color: 'yellow' },
  dim: { dimColor: true },
  title: { bold: true, color: 'blueBright' },
  chart: { color: 'cyan' },
  selected: { inverse: true, bold: true },
}

export function Tint({ tone, children }: { tone?: Tone; children: ReactNode }) {
  const on = useContext(ColorOn)
  return <Text {...(on && tone ? STYLE[tone] : {})}>{children}</Text>
}
