/**
 * Prometheus metrics in the text exposition format: counters, gauges read at scrape time, and
 * histograms with fixed buckets. Small enough to own; the pageserver and the safekeepers expose a handful
 * of series each.
 */

type Labels = Record<string, string>

const labelText = (labels: Labels): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => `\\${c}`)}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}

interface Metric {
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

/** A gauge whose samples are computed when scraped, so it never goes stale. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => { labels?: Labels; value: number }[],
  ) {}

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`]
    for (const s of this.collect()) lines.push(`${this.name}${labelText(s.labels ?? {})} ${s.value}`)
    return lines
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
