/**
 * `npm run bench -- <name> [--json]`: runs one benchmark. Human-readable lines go to stderr; with
 * --json the last line on stdout is one JSON object of figures.
 */
import { basebackupBench } from './basebackup.js'
import { clusterBench } from './cluster.js'
import { engineBench } from './engine.js'
import { ingestBench } from './ingest.js'
import { remoteBench } from './remote.js'
import { safekeepersBench } from './safekeepers.js'
import { walDecodeBench } from './wal-decode.js'
import { walLoadBench } from './wal-load.js'

const BENCHES: Record<string, () => Promise<Record<string, number | string>>> = {
  basebackup: basebackupBench,
  cluster: clusterBench,
  engine: engineBench,
  ingest: ingestBench,
  remote: remoteBench,
  safekeepers: safekeepersBench,
  'wal-decode': walDecodeBench,
  'wal-load': walLoadBench,
}

const args = process.argv.slice(2)
const name = args.find((a) => !a.startsWith('-'))
const bench = name ? BENCHES[name] : undefined
if (!bench) {
  console.error(`usage: npm run bench -- <name> [--json]; benchmarks: ${Object.keys(BENCHES).join(', ')}`)
  process.exit(2)
}
const figures = await bench()
if (args.includes('--json')) console.log(JSON.stringify(figures))
else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(24)} ${v}`)
