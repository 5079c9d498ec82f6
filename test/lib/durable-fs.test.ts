import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { removeTempFiles, TEMP_SUFFIX, writeFileDurablyVia } from '../../src/lib/durable-fs.js'

const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'zenith-durable-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('writeFileDurablyVia', () => {
  it('moves what the writer wrote into place, and leaves nothing after a writer that failed', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'obj')
    await writeFileDurablyVia(file, (tmp) => writeFile(tmp, 'whole'))
    expect(readFileSync(file, 'utf8')).toBe('whole')
    await expect(
      writeFileDurablyVia(file, async (tmp) => {
        await writeFile(tmp, 'part')
        throw new Error('cut off')
      }),
    ).rejects.toThrow('cut off')
    expect(readdirSync(dir)).toEqual(['obj'])
    expect(readFileSync(file, 'utf8')).toBe('whole')
  })
})

describe('removeTempFiles', () => {
  it('removes both kinds of temp name and nothing else', () => {
    const dir = tempDir()
    for (const name of [
      'layer',
      `layer${TEMP_SUFFIX}`,
      `layer${TEMP_SUFFIX}.0123456789ab`,
      `layer${TEMP_SUFFIX}.xyz`,
    ])
      writeFileSync(path.join(dir, name), '')
    expect(removeTempFiles(dir).sort()).toEqual([`layer${TEMP_SUFFIX}`, `layer${TEMP_SUFFIX}.0123456789ab`])
    expect(readdirSync(dir).sort()).toEqual(['layer', `layer${TEMP_SUFFIX}.xyz`])
  })
})
