/**
 * Prometheus metrics in the text exposition format: counters, gauges read at scrape time, and
 * histograms with fixed buckets. Small enough to own; the pageserver and the safekeepers expose a handful
 * of series each.
 */

type Labels = Record<string, string>

// The exposition format escapes a newline as the two characters `\n`, not as a backslash before one.
const escapeLabel = (v: string): string => v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))

const labelText = (labels: Labels): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}

export interface Metric {
  render(): string[]
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; n: number }>()
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(by = 1, labels: Labels = {}): void {
    const k = labelText(labels)
    const v = this.values.get(k)
    if (v) v.n += by
    else this.values.set(k, { labels, n: by })
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`]
    if (this.values.size === 0) lines.push(`${this.name} 0`)
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v.n}`)
    return lines
  }
}

type Collect = () => { labels?: Labels; value: number }[]

/** Samples computed when scraped, so they never go stale. */
class Collected implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly type: 'gauge' | 'counter',
    private readonly collect: Collect,
  ) {}

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    for (const s of this.collect()) lines.push(`${this.name}${labelText(s.labels ?? {})} ${s.value}`)
    return lines
  }
}

export class Gauge extends Collected {
  constructor(name: string, help: string, collect: Collect) {
    super(name, help, 'gauge', collect)
  }
}

/** A counter that something else keeps (the page cache counts its own hits), read when scraped. */
export class CollectedCounter extends Collected {
  constructor(name: string, help: string, collect: Collect) {
    super(name, help, 'counter', collect)
  }
}

export class Histogram implements Metric {
  private readonly counts: number[]
  private sum = 0
  private count = 0

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending. */
    readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0)
  }

  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++
    this.sum += v
    this.count++
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    this.buckets.forEach((b, i) => {
      lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`)
    })
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`)
    lines.push(`${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`)
    return lines
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = []

  add<M extends Metric>(m: M): M {
    this.metrics.push(m)
    return m
  }

  render(): string {
    return `${this.metrics.flatMap((m) => m.render()).join('\n')}\n`
  }
}

/** One sample of a scrape: `name{labels} value`. */
export interface MetricSample {
  name: string
  labels: Labels
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y

const unescapeLabel = (v: string): string => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))

const sampleValue = (v: string): number =>
  v === '+Inf' ? Number.POSITIVE_INFINITY : v === '-Inf' ? Number.NEGATIVE_INFINITY : Number(v)

/**
 * The samples of a text exposition, in order; comments and lines that are not samples are skipped, so a
 * newer server's additions never break an older reader.
 */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (!m) continue
    const labels: Labels = {}
    if (m[2] !== undefined) {
      LABEL.lastIndex = 0
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2])
        if (!l) break
        labels[l[1]] = unescapeLabel(l[2])
      }
    }
    samples.push({ name: m[1], labels, value: sampleValue(m[3]) })
  }
  return samples
}
