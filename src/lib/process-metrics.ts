/**
 * The standard Prometheus series of the process itself, as Neon's servers export them: address space,
 * resident memory, threads and CPU time. The address space is here because zenith must run under an
 * RLIMIT_AS of 2 GiB, where every isolate, thread stack and malloc arena counts; CPU time is what "WAL per
 * CPU-second" is measured against. Read from /proc/self/status at scrape time; where there is no /proc
 * (not Linux) the memory and thread series have no samples.
 */
import { readFileSync } from 'node:fs'
import { CollectedCounter, Gauge, type Metric } from './metrics.js'

/** VmSize, VmRSS (kB) and Threads of /proc/self/status. */
function statusField(name: 'VmSize' | 'VmRSS' | 'Threads'): number | undefined {
  let text: string
  try {
    text = readFileSync('/proc/self/status', 'latin1')
  } catch {
    return undefined
  }
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)
  if (m === null) return undefined
  return name === 'Threads' ? Number(m[1]) : Number(m[1]) * 1024
}

const sampleOf = (value: number | undefined) => (value === undefined ? [] : [{ value }])

export function processMetrics(): Metric[] {
  return [
    new Gauge('process_virtual_memory_bytes', 'virtual memory size (address space) in bytes', () =>
      sampleOf(statusField('VmSize')),
    ),
    new Gauge('process_resident_memory_bytes', 'resident memory size in bytes', () =>
      sampleOf(statusField('VmRSS')),
    ),
    new Gauge('process_threads', 'OS threads in the process', () => sampleOf(statusField('Threads'))),
    new CollectedCounter('process_cpu_seconds_total', 'user and system CPU time spent, in seconds', () => {
      const { user, system } = process.cpuUsage()
      return [{ value: (user + system) / 1e6 }]
    }),
  ]
}
