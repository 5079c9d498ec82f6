/**
 * The process the upload crash test kills: it opens the repository with remote storage (a local
 * directory or S3) under the generation it is given, keeps ingesting the deterministic history so that
 * flushes, uploads, compaction and remote deletions run all the time, and prints
 *
 *   ready <lsn>            once it ingests, from last_record_lsn (the remote index's after reconciliation)
 *   dcl <lsn> / rcl <lsn>  each time disk_consistent_lsn / remote_consistent_lsn moves
 *   upload <key> <bytes>   as a layer upload begins
 *
 * until it is killed. Arguments: dir, storage (JSON: {"fs": root} or {"s3": S3StorageOptions}), tenant,
 * timeline, generation, options (JSON: memoryBudget, checkpointEvery).
 */
import { stat } from 'node:fs/promises'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import type { RemoteObject, RemoteStorage } from '../../src/engine/remote-storage.js'
import { Repository } from '../../src/engine/repository.js'
import { S3Storage, type S3StorageOptions } from '../../src/pageserver/s3-storage.js'
import { ingestForever, reportChanges } from '../harness/crash-workload.js'
import { testRedo } from '../harness/engine.js'

export type StorageSpec = { fs: string } | { s3: S3StorageOptions }
export interface ChildOptions {
  memoryBudget: number
  checkpointEvery: number
}

/** Says on stdout when a layer upload begins, so that the parent can kill in the middle of one. */
class AnnouncingStorage implements RemoteStorage {
  constructor(private readonly inner: RemoteStorage) {}
  get location(): string {
    return this.inner.location
  }
  put(key: string, body: Buffer): Promise<void> {
    return this.inner.put(key, body)
  }
  async putFile(key: string, localPath: string): Promise<void> {
    process.stdout.write(`upload ${key} ${(await stat(localPath)).size}\n`)
    return this.inner.putFile(key, localPath)
  }
  get(key: string): Promise<Buffer> {
    return this.inner.get(key)
  }
  getFile(key: string, localPath: string): Promise<void> {
    return this.inner.getFile(key, localPath)
  }
  list(prefix: string): Promise<RemoteObject[]> {
    return this.inner.list(prefix)
  }
  delete(keys: readonly string[]): Promise<void> {
    return this.inner.delete(keys)
  }
}

const [dir, storageArg, tenantId, timelineId, generationArg, optionsArg] = process.argv.slice(2)
const spec = JSON.parse(storageArg) as StorageSpec
const options = JSON.parse(optionsArg) as ChildOptions
const storage = 'fs' in spec ? new LocalFsStorage(spec.fs) : new S3Storage(spec.s3)
const repo = await Repository.open(dir, {
  redo: testRedo(),
  pageCacheSlots: 64,
  memoryBudget: options.memoryBudget,
  remote: { storage: new AnnouncingStorage(storage), backoff: { baseMs: 10, maxMs: 100 } },
  locations: new Map([[tenantId, { generation: Number(generationArg), mode: 'AttachedSingle' }]]),
})
const tl = repo.tenant(tenantId).timeline(timelineId)

reportChanges('dcl', () => tl.diskConsistentLsn)
reportChanges('rcl', () => tl.remoteConsistentLsn)
process.stdout.write(`ready ${tl.lastRecordLsn}\n`)
await ingestForever(tl, options.checkpointEvery)
