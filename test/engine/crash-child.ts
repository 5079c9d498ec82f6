/**
 * The process a crash test kills: it keeps ingesting the deterministic history with small layers,
 * flushing, compacting and creating images in the background, and prints `dcl <lsn>` each time
 * disk_consistent_lsn moves, until it is killed.
 */
import { Repository } from '../../src/engine/repository.js'
import { keyIndexOf, keyOf, lsnOf, valueOfWrite, writesUpTo } from '../harness/crash-workload.js'
import { testRedo } from '../harness/engine.js'

const [dir, tenantArg, timelineArg] = process.argv.slice(2)
const repo = await Repository.open(dir, { redo: testRedo(), pageCacheSlots: 64, memoryBudget: 1 << 20 })
const tenant = repo.tenant(tenantArg)
const tl = tenant.timeline(timelineArg)

let reported = tl.diskConsistentLsn
const report = () => {
  if (tl.diskConsistentLsn !== reported) {
    reported = tl.diskConsistentLsn
    process.stdout.write(`dcl ${reported}\n`)
  }
}
setInterval(report, 5)
process.stdout.write(`ready ${tl.lastRecordLsn}\n`)

let n = writesUpTo(tl.lastRecordLsn)
for (;;) {
  const writes = []
  for (let i = 0; i < 40; i++, n++)
    writes.push({ key: keyOf(keyIndexOf(n)), lsn: lsnOf(n), value: valueOfWrite(n) })
  tl.ingest(writes, lsnOf(n - 1))
  if (n % 2000 < 40) await tl.checkpoint()
  await new Promise((r) => setImmediate(r))
}
