import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { LocalFsStorage } from '../../src/engine/local-fs-storage.js'
import { TEMP_SUFFIX } from '../../src/lib/durable-fs.js'
import { remoteStorageContract } from './remote-storage-contract.js'

remoteStorageContract('local directory', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-localfs-'))
  return { storage: new LocalFsStorage(dir), close: () => rm(dir, { recursive: true, force: true }) }
})

describe('LocalFsStorage', () => {
  it('never lists the temp file of a write that did not finish, and leaves none after a failed one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-localfs-'))
    try {
      const s = new LocalFsStorage(dir)
      await s.put('t/obj', Buffer.from('whole'))
      // What a killed writer leaves behind.
      await writeFile(path.join(dir, 't', `obj${TEMP_SUFFIX}.deadbeef0000`), 'part')
      expect(await s.list('t/')).toEqual([{ key: 't/obj', size: 5 }])
      await expect(s.putFile('t/other', path.join(dir, 'no-such-file'))).rejects.toThrow(/ENOENT/)
      expect((await readdir(path.join(dir, 't'))).filter((n) => !n.includes('deadbeef'))).toEqual(['obj'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a deletion removes the temp files killed writers left in its directory, not those of live writes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'zenith-localfs-'))
    try {
      const s = new LocalFsStorage(dir, 60_000)
      for (const key of ['t/a', 't/b', 'u/c']) await s.put(key, Buffer.from(key))
      const temp = (name: string) =>
        path.join(dir, name.split('/')[0], `${name.split('/')[1]}${TEMP_SUFFIX}.${'0'.repeat(12)}`)
      for (const name of ['t/dead', 't/live', 'u/dead']) await writeFile(temp(name), 'part')
      const hourAgo = new Date(Date.now() - 3600_000)
      for (const name of ['t/dead', 'u/dead']) await utimes(temp(name), hourAgo, hourAgo)
      await s.delete(['t/a'])
      expect((await readdir(path.join(dir, 't'))).sort()).toEqual(['b', path.basename(temp('t/live'))])
      // Only the directories a deletion touched are swept.
      expect((await readdir(path.join(dir, 'u'))).sort()).toEqual(['c', path.basename(temp('u/dead'))])
      expect((await s.list('')).map((o) => o.key)).toEqual(['t/b', 'u/c'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
