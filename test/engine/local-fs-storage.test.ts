import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
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
})
