/**
 * The standard Prometheus series of the process itself, as Neon's servers export them: address space,
 * resident memory, threads and CPU time. The address space is here because zenith must run under an
 * RLIMIT_AS of 2 GiB, where every isolate, thread stack and malloc arena counts; CPU time is what "WAL per
 * CPU-second" is measured against. /proc/self/status is read once per scrape; where there is no /proc
 * (not Linux) the memory and thread series have no samples.
 */
import { readFileSync } from 'node:fs'
import { CollectedCounter, Gauge, type Metric } from './metrics.js'

/** VmSize and VmRSS in bytes and Threads of /proc/self/status, or null without /proc. */
function readStatus(): Map<string, number> | null {
  let text: string
  try {
    text = readFileSync('/proc/self/status', 'latin1')
  } catch {
    return null
  }
  const fields = new Map<string, number>()
  for (const m of text.matchAll(/^(VmSize|VmRSS|Threads):\s+(\d+)/gm)) {
    fields.set(m[1], m[1] === 'Threads' ? Number(m[2]) : Number(m[2]) * 1024)
  }
  return fields
}

export function processMetrics(): Metric {
  return {
    render() {
      const status = readStatus()
      const sampleOf = (field: string) => () => {
        const value = status?.get(field)
        return value === undefined ? [] : [{ value }]
      }
      return [
        new Gauge(
          'process_virtual_memory_bytes',
          'virtual memory size (address space) in bytes',
          sampleOf('VmSize'),
        ),
        new Gauge('process_resident_memory_bytes', 'resident memory size in bytes', sampleOf('VmRSS')),
        new Gauge('process_threads', 'OS threads in the process', sampleOf('Threads')),
        new CollectedCounter(
          'process_cpu_seconds_total',
          'user and system CPU time spent, in seconds',
          () => {
            const { user, system } = process.cpuUsage()
            return [{ value: (user + system) / 1e6 }]
          },
        ),
      ].flatMap((m) => m.render())
    },
  }
}
