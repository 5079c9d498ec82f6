/**
 * Remote storage in a local directory (`.zenith/remote_storage/` by default): one file per object, the
 * key its path. Every object is written to a temp name unique to the write, fsynced, renamed into place,
 * and the directory fsynced, so an object is there whole or not at all, even with two writers or a
 * crash mid-write; list never shows the temp names.
 *
 * A writer killed mid-write leaves its temp file, which no key names, so nothing would ever delete it
 * (a large layer's worth of disk each time). Deletions in a directory also remove its temp files that
 * no write has touched for `tempMaxAgeMs`: a live write keeps its file's mtime fresh, and one that
 * stalled longer and then resumes fails its rename and is retried under a new temp name.
 */
import { constants, type Dirent } from 'node:fs'
import { copyFile, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir, TEMP_SUFFIX, writeFileDurablyVia } from '../lib/durable-fs.js'
import {
  checkRemoteKey,
  RemoteNotFoundError,
  type RemoteObject,
  type RemoteStorage,
  RemoteStorageError,
} from './remote-storage.js'

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT'

/**
 * Copies a file into a new temp file, in the thread pool (copy_file_range where the filesystem has it),
 * so no byte passes through JavaScript: a layer upload was a stream of 64 KiB reads and writes. The copy
 * creates the temp file itself and removes it when it fails, so none is left behind by a failed copy.
 */
function copyInto(src: string, tmp: string): Promise<void> {
  return copyFile(src, tmp, constants.COPYFILE_EXCL)
}

/** How long a temp file must be untouched before a deletion in its directory removes it. */
export const TEMP_MAX_AGE_MS = 60 * 60 * 1000

export class LocalFsStorage implements RemoteStorage {
  constructor(
    readonly root: string,
    private readonly tempMaxAgeMs = TEMP_MAX_AGE_MS,
  ) {}

  get location(): string {
    return this.root
  }

  private pathOf(key: string): string {
    checkRemoteKey(key)
    return path.join(this.root, ...key.split('/'))
  }

  /** The object's directory, made durably: each directory created is fsynced into its parent. */
  private async dirFor(file: string): Promise<void> {
    const dir = path.dirname(file)
    const created = await mkdir(dir, { recursive: true })
    if (created === undefined) return
    for (let d = dir; d.length >= created.length; d = path.dirname(d)) fsyncDir(path.dirname(d))
  }

  async put(key: string, body: Buffer): Promise<void> {
    const file = this.pathOf(key)
    await this.dirFor(file)
    await writeFileDurablyVia(file, async (tmp) => {
      const fd = await open(tmp, 'wx', 0o644)
      try {
        await fd.writeFile(body)
      } finally {
        await fd.close()
      }
    })
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const file = this.pathOf(key)
    await this.dirFor(file)
    await writeFileDurablyVia(file, (tmp) => copyInto(localPath, tmp))
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key))
    } catch (err) {
      if (isMissing(err)) throw new RemoteNotFoundError(`remote object ${key} does not exist in ${this.root}`)
      throw new RemoteStorageError(
        `reading remote object ${key} from ${this.root}: ${(err as Error).message}`,
      )
    }
  }

  async getFile(key: string, localPath: string): Promise<void> {
    const src = this.pathOf(key)
    try {
      await stat(src)
    } catch (err) {
      if (isMissing(err)) throw new RemoteNotFoundError(`remote object ${key} does not exist in ${this.root}`)
      throw err
    }
    await writeFileDurablyVia(localPath, (tmp) => copyInto(src, tmp))
  }

  async list(prefix: string): Promise<RemoteObject[]> {
    // Only the directory the prefix names is walked: a timeline's objects are one directory.
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1)
    const found: RemoteObject[] = []
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: Dirent[]
      try {
        entries = await readdir(dir, { withFileTypes: true })
      } catch (err) {
        if (isMissing(err)) return
        throw err
      }
      for (const e of entries) {
        const key = keyPrefix + e.name
        if (e.isDirectory()) await walk(path.join(dir, e.name), `${key}/`)
        else if (!e.name.includes(TEMP_SUFFIX) && key.startsWith(prefix))
          found.push({ key, size: (await stat(path.join(dir, e.name))).size })
      }
    }
    await walk(base === '' ? this.root : path.join(this.root, ...base.slice(0, -1).split('/')), base)
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async delete(keys: readonly string[]): Promise<void> {
    const dirs = new Set<string>()
    for (const key of keys) {
      const file = this.pathOf(key)
      await rm(file, { force: true })
      dirs.add(path.dirname(file))
    }
    for (const d of dirs) {
      try {
        await this.removeAbandonedTemps(d)
        fsyncDir(d)
      } catch (err) {
        if (!isMissing(err)) throw err
      }
    }
  }

  private async removeAbandonedTemps(dir: string): Promise<void> {
    const before = Date.now() - this.tempMaxAgeMs
    for (const name of await readdir(dir)) {
      if (!name.includes(TEMP_SUFFIX)) continue
      const file = path.join(dir, name)
      try {
        if ((await stat(file)).mtimeMs < before) await rm(file, { force: true })
      } catch (err) {
        // Renamed into place or removed by its writer meanwhile.
        if (!isMissing(err)) throw err
      }
    }
  }
}
