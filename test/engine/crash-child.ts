/**
 * The process a crash test kills: it keeps ingesting the deterministic history with small layers,
 * flushing, compacting and creating images in the background, and prints `dcl <lsn>` each time
 * disk_consistent_lsn moves, until it is killed.
 */
import { Repository } from '../../src/engine/repository.js'
import { ingestForever, reportChanges } from '../harness/crash-workload.js'
import { testRedo } from '../harness/engine.js'

const [dir, tenantArg, timelineArg] = process.argv.slice(2)
const repo = await Repository.open(dir, { redo: testRedo(), pageCacheSlots: 64, memoryBudget: 1 << 20 })
const tl = repo.tenant(tenantArg).timeline(timelineArg)

reportChanges('dcl', () => tl.diskConsistentLsn)
process.stdout.write(`ready ${tl.lastRecordLsn}\n`)
await ingestForever(tl)
