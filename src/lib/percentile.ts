/**
 * Percentiles as the project reports them everywhere (benchmarks, `wal load`): nearest rank, so a p99 is
 * a value that was observed, never an interpolation between two.
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}
