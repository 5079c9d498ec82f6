import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { TarError, TarWriter } from '../../src/postgres/tar.js'

const BATCH = 64 * 1024
const MTIME = 1_700_000_000

const root = mkdtempSync(path.join(tmpdir(), 'zenith-tar-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function collecting(): { writer: TarWriter; chunks: Buffer[]; archive: () => Buffer } {
  const chunks: Buffer[] = []
  const writer = new TarWriter((chunk) => {
    chunks.push(chunk)
  })
  return { writer, chunks, archive: () => Buffer.concat(chunks) }
}

/** Deterministic bytes that differ between offsets, so misplaced content cannot compare equal. */
function pattern(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

interface ParsedEntry {
  path: string
  name: string
  prefix: string
  linkname: string
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  uname: string
  gname: string
  devmajor: number
  devminor: number
  data: Buffer
}

function text(h: Buffer, offset: number, width: number): string {
  const field = h.subarray(offset, offset + width)
  const end = field.indexOf(0)
  return field.subarray(0, end < 0 ? width : end).toString('utf8')
}

function octal(h: Buffer, offset: number, width: number): number {
  const field = h.toString('latin1', offset, offset + width)
  expect(field.slice(0, width - 1)).toMatch(/^[0-7]+$/)
  expect(field.slice(width - 1)).toBe('\u0000')
  return Number.parseInt(field.slice(0, width - 1), 8)
}

/** Independent of the writer: parses ustar as the format describes it, checking every block it passes. */
function readTar(archive: Buffer): ParsedEntry[] {
  expect(archive.length % 512).toBe(0)
  const entries: ParsedEntry[] = []
  let offset = 0
  for (;;) {
    const h = archive.subarray(offset, offset + 512)
    expect(h.length).toBe(512)
    if (h.every((b) => b === 0)) {
      const rest = archive.subarray(offset)
      expect(rest.length).toBe(1024)
      expect(rest.every((b) => b === 0)).toBe(true)
      return entries
    }
    const checksumField = h.toString('latin1', 148, 156)
    expect(checksumField).toMatch(/^[0-7]{6}/)
    expect(checksumField.slice(6)).toBe('\u0000 ')
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
    expect(Number.parseInt(checksumField.slice(0, 6), 8)).toBe(sum)
    expect(h.toString('latin1', 257, 263)).toBe('ustar\u0000')
    expect(h.toString('latin1', 263, 265)).toBe('00')
    const name = text(h, 0, 100)
    const prefix = text(h, 345, 155)
    const size = octal(h, 124, 12)
    const dataStart = offset + 512
    const dataEnd = dataStart + size
    const paddedEnd = dataStart + Math.ceil(size / 512) * 512
    expect(archive.subarray(dataEnd, paddedEnd).every((b) => b === 0)).toBe(true)
    entries.push({
      path: prefix === '' ? name : `${prefix}/${name}`,
      name,
      prefix,
      linkname: text(h, 157, 100),
      type: String.fromCharCode(h[156]),
      mode: octal(h, 100, 8),
      uid: octal(h, 108, 8),
      gid: octal(h, 116, 8),
      size,
      mtime: octal(h, 136, 12),
      uname: text(h, 265, 32),
      gname: text(h, 297, 32),
      devmajor: octal(h, 329, 8),
      devminor: octal(h, 337, 8),
      data: archive.subarray(dataStart, dataEnd),
    })
    offset = paddedEnd
  }
}

// 60 + 1 + 49 + 1 + 39 = 150 bytes, with slashes at offsets 60 and 110.
const LONG_PARENT = `long${'a'.repeat(56)}`
const LONG_DIR = `${LONG_PARENT}/${'b'.repeat(49)}`
const LONG_FILE = `${LONG_DIR}/${'f'.repeat(39)}`

interface Expected {
  name: string
  kind: 'dir' | 'file'
  mode: number
  data?: Buffer
}

describe('TarWriter', () => {
  it('writes an archive that the system tar lists and extracts exactly', async () => {
    const relation = pattern(3 * 1024 * 1024, 7)
    const expected: Expected[] = [
      { name: 'base', kind: 'dir', mode: 0o700 },
      { name: 'base/1', kind: 'dir', mode: 0o700 },
      { name: 'global', kind: 'dir', mode: 0o700 },
      { name: 'PG_VERSION', kind: 'file', mode: 0o600, data: Buffer.from('15\n') },
      { name: 'postgresql.conf', kind: 'file', mode: 0o644, data: Buffer.from("listen_addresses = ''\n") },
      { name: 'base/1/1259_vm', kind: 'file', mode: 0o600, data: Buffer.alloc(0) },
      { name: 'base/1/16384', kind: 'file', mode: 0o600, data: relation },
      { name: 'global/pg_control', kind: 'file', mode: 0o600, data: pattern(8192, 3) },
      { name: 'global/one_block', kind: 'file', mode: 0o644, data: pattern(512, 4) },
      { name: 'global/big', kind: 'file', mode: 0o600, data: pattern(BATCH + 1000, 5) },
      { name: LONG_PARENT, kind: 'dir', mode: 0o700 },
      { name: LONG_DIR, kind: 'dir', mode: 0o700 },
      { name: LONG_FILE, kind: 'file', mode: 0o644, data: pattern(1234, 6) },
    ]
    const { writer, archive } = collecting()
    for (const e of expected) {
      const opts = { mode: e.mode, mtime: MTIME }
      if (e.kind === 'dir') await writer.directory(e.name, opts)
      else if (e.data === relation) {
        await writer.fileStream(
          e.name,
          relation.length,
          async (put) => {
            for (let off = 0; off < relation.length; off += 8192)
              await put(relation.subarray(off, off + 8192))
          },
          opts,
        )
      } else await writer.file(e.name, e.data!, opts)
    }
    await writer.finish()
    expect(writer.bytesWritten).toBe(archive().length)

    const dir = mkdtempSync(path.join(root, 'system-tar-'))
    const tarPath = path.join(dir, 'base.tar')
    writeFileSync(tarPath, archive())

    const listing = execFileSync('tar', ['-tvf', tarPath, '--numeric-owner'], { encoding: 'utf8' })
      .trimEnd()
      .split('\n')
      .map((line) => {
        const m = /^(\S{10})\s+(\d+)\/(\d+)\s+(\d+)\s+\S+\s+\S+\s(.+)$/.exec(line)
        expect(m, line).not.toBeNull()
        return { perms: m![1], owner: `${m![2]}/${m![3]}`, size: Number(m![4]), name: m![5] }
      })
    const perms = (e: Expected) =>
      (e.kind === 'dir' ? 'd' : '-') +
      ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'].map((c, i) => (e.mode & (0o400 >> i) ? c : '-')).join('')
    expect(listing).toEqual(
      expected.map((e) => ({
        perms: perms(e),
        owner: '0/0',
        size: e.data?.length ?? 0,
        name: e.kind === 'dir' ? `${e.name}/` : e.name,
      })),
    )

    const out = path.join(dir, 'extracted')
    mkdirSync(out)
    execFileSync('tar', ['-xf', tarPath, '-C', out, '--no-same-owner', '--same-permissions'])
    const found = readdirSync(out, { recursive: true, encoding: 'utf8' }).sort()
    expect(found).toEqual(expected.map((e) => e.name).sort())
    for (const e of expected) {
      const st = statSync(path.join(out, e.name))
      expect(st.isDirectory(), e.name).toBe(e.kind === 'dir')
      expect(st.mode & 0o7777, e.name).toBe(e.mode)
      if (e.kind === 'file') expect(readFileSync(path.join(out, e.name)).equals(e.data!), e.name).toBe(true)
    }
  })

  it('fills every header field as ustar defines it', async () => {
    const { writer, archive } = collecting()
    const before = Math.floor(Date.now() / 1000)
    await writer.directory('pg_wal')
    await writer.file('pg_wal/000000010000000000000001', Buffer.from('wal'))
    const after = Math.floor(Date.now() / 1000)
    await writer.file('PG_VERSION', Buffer.from('15\n'), {
      mode: 0o100644,
      mtime: MTIME,
      uid: 26,
      gid: 0o7777777,
      uname: 'pgsql',
      gname: 'g'.repeat(31),
    })
    await writer.directory(LONG_DIR, { mtime: 0 })
    await writer.fileStream(LONG_FILE, 5, (put) => put(Buffer.from('hello')), { mtime: 0o77777777777 })
    const hundred = 'n'.repeat(100)
    const longest = `${'p'.repeat(155)}/${'n'.repeat(100)}`
    await writer.file(hundred, Buffer.alloc(0))
    await writer.file(longest, Buffer.alloc(1))
    await writer.finish()

    const entries = readTar(archive())
    expect(entries.map((e) => [e.prefix, e.name, e.type, e.size])).toEqual([
      ['', 'pg_wal/', '5', 0],
      ['', 'pg_wal/000000010000000000000001', '0', 3],
      ['', 'PG_VERSION', '0', 3],
      [LONG_PARENT, `${'b'.repeat(49)}/`, '5', 0],
      [LONG_PARENT, `${'b'.repeat(49)}/${'f'.repeat(39)}`, '0', 5],
      ['', hundred, '0', 0],
      ['p'.repeat(155), 'n'.repeat(100), '0', 1],
    ])
    expect(entries.map((e) => e.path)).toEqual([
      'pg_wal/',
      'pg_wal/000000010000000000000001',
      'PG_VERSION',
      `${LONG_DIR}/`,
      LONG_FILE,
      hundred,
      longest,
    ])
    const [dir, wal, version, longDir, longFile] = entries
    expect(dir).toMatchObject({ mode: 0o700, uid: 0, gid: 0, uname: 'postgres', gname: 'postgres' })
    expect(wal).toMatchObject({ mode: 0o600, uid: 0, gid: 0, linkname: '', devmajor: 0, devminor: 0 })
    for (const e of [dir, wal]) {
      expect(e.mtime).toBeGreaterThanOrEqual(before)
      expect(e.mtime).toBeLessThanOrEqual(after)
    }
    expect(wal.data.toString()).toBe('wal')
    expect(version).toMatchObject({
      mode: 0o644,
      mtime: MTIME,
      uid: 26,
      gid: 0o7777777,
      uname: 'pgsql',
      gname: 'g'.repeat(31),
    })
    expect(longDir.mtime).toBe(0)
    expect(longFile.mtime).toBe(0o77777777777)
    expect(longFile.data.toString()).toBe('hello')
  })

  it('batches small pieces into 64 KiB chunks and passes large content through uncopied', async () => {
    const { writer, chunks, archive } = collecting()
    for (let i = 0; i < 200; i++) await writer.file(`f${i}`, Buffer.alloc(100, i))
    expect(chunks.map((c) => c.length)).toEqual([BATCH, BATCH, BATCH])
    const big = pattern(BATCH, 9)
    await writer.file('big', big)
    expect(chunks.map((c) => c.length)).toEqual([BATCH, BATCH, BATCH, 200 * 1024 + 512 - 3 * BATCH, BATCH])
    expect(chunks[4]).toBe(big)
    const streamed = pattern(3 * BATCH, 10)
    await writer.fileStream('streamed', streamed.length, async (put) => {
      await put(streamed.subarray(0, 100))
      await put(streamed.subarray(100, 2 * BATCH + 100))
      await put(streamed.subarray(2 * BATCH + 100))
    })
    expect(chunks[5].length).toBe(512 + 100)
    expect(chunks[6].buffer).toBe(streamed.buffer)
    await writer.finish()
    const entries = readTar(archive())
    expect(entries).toHaveLength(202)
    expect(entries[200].data.equals(big)).toBe(true)
    expect(entries[201].data.equals(streamed)).toBe(true)
  })

  it('rejects names that ustar cannot hold, naming them, and stays usable', async () => {
    const { writer, archive } = collecting()
    const unsplittable = [
      'x'.repeat(101),
      `a/${'x'.repeat(101)}`,
      `${'p'.repeat(156)}/n`,
      `${'p'.repeat(155)}/${'n'.repeat(101)}`,
    ]
    for (const name of unsplittable) {
      await expect(writer.file(name, Buffer.from('x'))).rejects.toThrow(TarError)
      await expect(writer.fileStream(name, 1, () => Promise.resolve())).rejects.toThrow(name)
    }
    await expect(writer.directory('d'.repeat(100))).rejects.toThrow(/too long/)
    for (const name of ['', '/etc/passwd', 'a//b', 'a/../b', '..', 'a\u0000b']) {
      await expect(writer.file(name, Buffer.alloc(0))).rejects.toThrow(TarError)
    }
    await expect(writer.directory('base/')).rejects.toThrow(TarError)
    await expect(writer.file('x', Buffer.alloc(0), { uname: 'u'.repeat(32) })).rejects.toThrow(/uname/)
    await expect(writer.file('x', Buffer.alloc(0), { uid: 0o10000000 })).rejects.toThrow(/uid/)
    await expect(writer.file('x', Buffer.alloc(0), { mtime: 1.5 })).rejects.toThrow(/mtime/)
    await expect(writer.file('x', Buffer.alloc(0), { mode: -1 })).rejects.toThrow(/mode/)

    let called = false
    const tooBig = writer.fileStream('base/1/huge', 8 * 1024 ** 3, async () => {
      called = true
    })
    await expect(tooBig).rejects.toThrow(/8 GiB - 1/)
    expect(called).toBe(false)

    await writer.file('ok', Buffer.from('fine'))
    await writer.finish()
    expect(readTar(archive()).map((e) => e.path)).toEqual(['ok'])
  })

  it('fails the entry and the writer when fileStream content does not match its size', async () => {
    const short = collecting().writer
    await expect(short.fileStream('rel', 10_000, (put) => put(Buffer.alloc(8192)))).rejects.toThrow(
      /produced 8192 of the declared 10000 bytes/,
    )
    await expect(short.file('next', Buffer.alloc(1))).rejects.toThrow(/unusable/)
    await expect(short.finish()).rejects.toThrow(TarError)

    const long = collecting().writer
    await expect(
      long.fileStream('rel', 8192, async (put) => {
        await put(Buffer.alloc(8192))
        await put(Buffer.alloc(1))
      }),
    ).rejects.toThrow(/more than the declared 8192 bytes/)
    await expect(long.directory('next')).rejects.toThrow(TarError)

    const swallowed = collecting().writer
    await expect(
      swallowed.fileStream('rel', 4, async (put) => {
        await put(Buffer.alloc(4))
        await put(Buffer.alloc(4)).catch(() => {})
      }),
    ).rejects.toThrow(TarError)

    const stray = collecting().writer
    let late: ((chunk: Buffer) => Promise<void>) | undefined
    await stray.fileStream('rel', 1, async (put) => {
      late = put
      await put(Buffer.alloc(1))
    })
    await expect(late!(Buffer.alloc(1))).rejects.toThrow(/after writeContent finished/)
    await expect(stray.finish()).rejects.toThrow(/unusable/)

    const failing = new TarWriter(() => Promise.reject(new Error('connection reset')))
    await expect(failing.file('big', Buffer.alloc(BATCH))).rejects.toThrow('connection reset')
    await expect(failing.file('next', Buffer.alloc(1))).rejects.toThrow(/unusable.*connection reset/)
  })

  it('never has more than one write pending, and waits for each before producing more', async () => {
    let pending = 0
    let maxPending = 0
    let calls = 0
    const chunks: Buffer[] = []
    const writer = new TarWriter(async (chunk) => {
      pending++
      calls++
      maxPending = Math.max(maxPending, pending)
      await sleep(1)
      chunks.push(chunk)
      pending--
    })
    await writer.directory('base')
    for (let i = 0; i < 300; i++) await writer.file(`base/${i}`, pattern(300 + i, i))
    await writer.file('big', pattern(2 * BATCH, 11))
    const rel = pattern(1024 * 1024, 12)
    await writer.fileStream('rel', rel.length, async (put) => {
      for (let off = 0; off < rel.length; ) {
        const n = (off / 8192) % 3 === 0 ? 128 * 1024 : 8192
        await put(rel.subarray(off, off + n))
        off += n
      }
    })
    await writer.finish()
    expect(maxPending).toBe(1)
    expect(calls).toBeGreaterThan(10)
    const archive = Buffer.concat(chunks)
    expect(writer.bytesWritten).toBe(archive.length)
    const entries = readTar(archive)
    expect(entries).toHaveLength(303)
    expect(entries[302].data.equals(rel)).toBe(true)

    let release!: () => void
    const gate = new TarWriter(() => new Promise<void>((resolve) => (release = resolve)))
    let done = false
    const big = gate.file('big', Buffer.alloc(2 * BATCH)).then(() => {
      done = true
    })
    await sleep(20)
    expect(done).toBe(false)
    expect(gate.bytesWritten).toBe(0)
    await expect(gate.file('other', Buffer.alloc(1))).rejects.toThrow(/still being written/)
    release()
    await sleep(5)
    release()
    await big
    expect(gate.bytesWritten).toBe(512 + 2 * BATCH)
  })

  it('refuses entries after finish', async () => {
    const { writer, archive } = collecting()
    await writer.finish()
    expect(archive()).toEqual(Buffer.alloc(1024))
    await expect(writer.file('late', Buffer.alloc(1))).rejects.toThrow(/already finished/)
    await expect(writer.finish()).rejects.toThrow(TarError)
  })
})
