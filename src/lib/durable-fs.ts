/**
 * Crash-safe file writes: write to `<name>.___temp`, fsync, rename over the final name, fsync the
 * directory. After a crash a reader sees the old file or the new one, never a torn one; the temp leftovers
 * are removed when the directory is next opened (removeTempFiles).
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

export const TEMP_SUFFIX = '.___temp'

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * The same in the thread pool, for the main thread of a server: an fsync can take hundreds of
 * milliseconds (a large file, a busy disk) that every request would wait.
 */
export const fsyncOffThread: (fd: number) => Promise<void> = promisify(fsync)

export async function fsyncDirOffThread(dir: string): Promise<void> {
  const fd = await open(dir, 'r')
  try {
    await fd.sync()
  } finally {
    await fd.close()
  }
}

export function writeFileDurable(file: string, data: Buffer | string): void {
  const tmp = file + TEMP_SUFFIX
  const fd = openSync(tmp, 'w', 0o644)
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    let done = 0
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
  fsyncDir(path.dirname(file))
}

/** Moves an already written and fsynced temp file into place durably. */
export function commitTempFile(tmp: string, file: string): void {
  renameSync(tmp, file)
  fsyncDir(path.dirname(file))
}

/** commitTempFile with the rename and the directory's fsync in the thread pool. */
export async function commitTempFileOffThread(tmp: string, file: string): Promise<void> {
  await rename(tmp, file)
  await fsyncDirOffThread(path.dirname(file))
}

/**
 * Writes `file` through `write`, which fills the temp name it is given, then fsyncs it, renames it into
 * place and fsyncs the directory. The temp name is unique to the write, so two writers of one file
 * never share a temp file; a failed write removes its temp file.
 */
export async function writeFileDurablyVia(
  file: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = `${file}${TEMP_SUFFIX}.${randomBytes(6).toString('hex')}`
  try {
    await write(tmp)
    const fd = await open(tmp, 'r+')
    try {
      await fd.sync()
    } finally {
      await fd.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDirOffThread(path.dirname(file))
}

const isTempName = (name: string) => name.endsWith(TEMP_SUFFIX) || /\.___temp\.[0-9a-f]{12}$/.test(name)

/** Removes leftovers of interrupted writes (of both kinds of temp name); returns their names. */
export function removeTempFiles(dir: string): string[] {
  const removed: string[] = []
  for (const name of readdirSync(dir)) {
    if (isTempName(name)) {
      rmSync(path.join(dir, name), { force: true })
      removed.push(name)
    }
  }
  if (removed.length > 0) fsyncDir(dir)
  return removed
}
