import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  createReadStream,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { readTar as readEntries, type TarEntry, TarError, TarWriter } from '../../src/postgres/tar.js'
import { extractTar } from '../../src/postgres/tar-extract.js'

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

/** Feeds `archive` in pieces whose sizes `nextSize` picks, as a socket would. */
async function* chunked(archive: Buffer, nextSize: () => number): AsyncGenerator<Buffer> {
  for (let off = 0; off < archive.length; ) {
    const n = Math.max(1, nextSize())
    yield archive.subarray(off, off + n)
    off += n
  }
}

function randomSizes(seed: number, max: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return 1 + ((x >>> 0) % max)
  }
}

async function collect(source: AsyncIterable<Buffer>): Promise<TarEntry[]> {
  const entries: TarEntry[] = []
  for await (const entry of readEntries(source)) entries.push(entry)
  return entries
}

function summary(entries: TarEntry[]): [string, string, number, string, string | undefined][] {
  return entries.map((e) => [e.name, e.type, e.mode, e.data.toString('hex'), e.linkName])
}

/** A header as any writer might make it, for archives TarWriter refuses to produce. */
function rawEntry(name: string, typeflag: string, data = Buffer.alloc(0), linkName = ''): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0)
  h.write('0000644\u0000', 100)
  h.write('0000000\u0000', 108)
  h.write('0000000\u0000', 116)
  h.write(`${data.length.toString(8).padStart(11, '0')}\u0000`, 124)
  h.write('00000000000\u0000', 136)
  h.write(typeflag, 156)
  h.write(linkName, 157)
  h.write('ustar\u000000', 257)
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148)
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

function rawArchive(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)])
}

/** A small tree for GNU tar: a file, a subdir with a file, a symlink, and names too long for ustar. */
function makeTree(dir: string): { longName: string; deepPath: string; longTarget: string } {
  mkdirSync(dir)
  writeFileSync(path.join(dir, 'hello.txt'), 'hello, tar\n')
  chmodSync(path.join(dir, 'hello.txt'), 0o640)
  mkdirSync(path.join(dir, 'sub'))
  chmodSync(path.join(dir, 'sub'), 0o750)
  writeFileSync(path.join(dir, 'sub', 'blocks.bin'), pattern(3 * 512 + 17, 21))
  chmodSync(path.join(dir, 'sub', 'blocks.bin'), 0o600)
  symlinkSync('hello.txt', path.join(dir, 'link'))
  const longName = `long-${'n'.repeat(140)}`
  writeFileSync(path.join(dir, longName), 'long name')
  // No '/' splits this into ustar's prefix and name fields.
  const deepDir = path.join('d'.repeat(120), 'e'.repeat(120))
  mkdirSync(path.join(dir, deepDir), { recursive: true })
  const deepPath = path.join(deepDir, 'f'.repeat(60))
  writeFileSync(path.join(dir, deepPath), 'deep')
  const longTarget = `../${'t'.repeat(150)}`
  symlinkSync(longTarget, path.join(dir, 'sub', 'dangling'))
  return { longName, deepPath, longTarget }
}

describe('readTar', () => {
  async function writerArchive(big: boolean): Promise<{ archive: Buffer; expected: TarEntry[] }> {
    const expected: TarEntry[] = []
    const { writer, archive } = collecting()
    const dir = async (name: string, mode: number) => {
      await writer.directory(name, { mode, mtime: MTIME })
      expected.push({ name, type: 'directory', mode, size: 0, data: Buffer.alloc(0), pieces: [] })
    }
    const file = async (name: string, data: Buffer, mode: number) => {
      await writer.file(name, data, { mode, mtime: MTIME })
      expected.push({ name, type: 'file', mode, size: data.length, data, pieces: [data] })
    }
    await dir('base', 0o700)
    await dir('base/1', 0o750)
    await file('PG_VERSION', Buffer.from('15\n'), 0o600)
    await file('base/1/1259_vm', Buffer.alloc(0), 0o600)
    await file('base/1/one_block', pattern(512, 31), 0o644)
    await file('base/1/odd', pattern(1000, 32), 0o640)
    await dir(LONG_PARENT, 0o700)
    await dir(LONG_DIR, 0o700)
    await file(LONG_FILE, pattern(1234, 33), 0o600)
    if (big) await file('global/big', pattern(BATCH + 1000, 34), 0o600)
    await writer.finish()
    return { archive: archive(), expected }
  }

  it('reads back what TarWriter wrote, however the stream is chunked', async () => {
    const { archive, expected } = await writerArchive(true)
    const whole = await collect(chunked(archive, () => archive.length))
    expect(summary(whole)).toEqual(summary(expected))
    expect(whole.map((e) => e.size)).toEqual(expected.map((e) => e.size))
    for (const seed of [1, 2, 3]) {
      expect(summary(await collect(chunked(archive, randomSizes(seed, 1500))))).toEqual(summary(expected))
    }
    expect(summary(await collect(chunked(archive, randomSizes(4, 100_000))))).toEqual(summary(expected))
    // Blocks cut at every byte, and chunks that end exactly at block boundaries.
    expect(summary(await collect(chunked(archive, () => 1)))).toEqual(summary(expected))
    expect(summary(await collect(chunked(archive, () => 512)))).toEqual(summary(expected))
    // Content comes as views of the chunks it arrived in, which together are the file.
    const pieced = await collect(chunked(archive, randomSizes(6, 700)))
    const big = pieced.find((e) => e.name === 'global/big')!
    expect(big.pieces.length).toBeGreaterThan(50)
    expect(Buffer.concat(big.pieces).equals(pattern(BATCH + 1000, 34))).toBe(true)
  })

  it('stops at the end-of-archive blocks and ignores the record padding after them', async () => {
    const { archive, expected } = await writerArchive(false)
    const padded = Buffer.concat([archive, Buffer.alloc(10240 - (archive.length % 10240))])
    expect(summary(await collect(chunked(padded, randomSizes(5, 700))))).toEqual(summary(expected))
  })

  it('detects a corrupted header checksum and names the offset of the header', async () => {
    const { archive } = await writerArchive(false)
    // Entries: base/ at 0, base/1/ at 512, PG_VERSION at 1024 (one block of content), 1259_vm at 2048.
    const corrupt = Buffer.from(archive)
    corrupt[2048 + 5] ^= 0x01
    const seen: string[] = []
    const reading = (async () => {
      for await (const e of readEntries(chunked(corrupt, randomSizes(6, 300)))) seen.push(e.name)
    })()
    await expect(reading).rejects.toThrow(TarError)
    await expect(reading).rejects.toThrow(/header at offset 2048 has a bad checksum/)
    expect(seen).toEqual(['base', 'base/1', 'PG_VERSION'])

    const garbage = Buffer.from(archive)
    garbage.write('zzzzzzzz', 148, 'latin1')
    await expect(collect(chunked(garbage, () => 100))).rejects.toThrow(/offset 0 has no valid checksum/)
  })

  it('rejects truncated archives', async () => {
    const { archive } = await writerArchive(false)
    const cuts = [
      0,
      1,
      511,
      512,
      1024 + 512 + 3,
      archive.length - 1024,
      archive.length - 512,
      archive.length - 1,
    ]
    for (const cut of cuts) {
      const reading = collect(chunked(archive.subarray(0, cut), randomSizes(cut + 1, 200)))
      await expect(reading, `cut at ${cut}`).rejects.toThrow(/tar archive is truncated/)
    }
    await expect(collect(chunked(archive.subarray(0, 1024 + 512 + 3), () => 4096))).rejects.toThrow(
      /"PG_VERSION" at offset 1024 needs 3 bytes of content, the archive ends at offset 1539/,
    )
  })

  it('releases the source when the consumer stops early', async () => {
    const { archive } = await writerArchive(false)
    let released = false
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield* chunked(archive, () => 512)
      } finally {
        released = true
      }
    }
    for await (const entry of readEntries(source())) {
      expect(entry.name).toBe('base')
      break
    }
    expect(released).toBe(true)
  })

  it('reads a GNU tar archive with a file, a subdir, a symlink and long names, in gnu and pax format', async () => {
    const dir = mkdtempSync(path.join(root, 'gnu-read-'))
    const src = path.join(dir, 'src')
    const { longName, deepPath, longTarget } = makeTree(src)
    for (const format of ['gnu', 'pax', 'ustar']) {
      const tarPath = path.join(dir, `${format}.tar`)
      // Plain ustar has no room for the long names, which GNU tar would refuse to archive.
      const members = format === 'ustar' ? ['--exclude=dangling', 'hello.txt', 'sub', 'link'] : ['.']
      execFileSync('tar', [`--format=${format}`, '-cf', tarPath, '-C', src, ...members])
      const entries = await collect(createReadStream(tarPath, { highWaterMark: 777 }))
      const byName = new Map(entries.map((e) => [e.name, e]))
      const p = (name: string) => (format === 'ustar' ? name : `./${name}`)
      expect(byName.get(p('hello.txt')), format).toMatchObject({ type: 'file', mode: 0o640, size: 11 })
      expect(byName.get(p('hello.txt'))!.data.toString()).toBe('hello, tar\n')
      expect(byName.get(p('sub'))).toMatchObject({ type: 'directory', mode: 0o750, size: 0 })
      expect(byName.get(p('sub'))!.data.length).toBe(0)
      expect(byName.get(p('sub/blocks.bin'))!.data.equals(pattern(3 * 512 + 17, 21))).toBe(true)
      expect(byName.get(p('link'))).toMatchObject({ type: 'symlink', linkName: 'hello.txt', size: 0 })
      if (format === 'ustar') {
        expect(entries.map((e) => e.name).sort()).toEqual(['hello.txt', 'link', 'sub', 'sub/blocks.bin'])
        continue
      }
      expect(byName.get(`./${longName}`)?.data.toString(), format).toBe('long name')
      expect(byName.get(`./${deepPath}`)?.data.toString(), format).toBe('deep')
      expect(byName.get('./sub/dangling'), format).toMatchObject({ type: 'symlink', linkName: longTarget })
      expect(byName.get('.'), format).toMatchObject({ type: 'directory' })
      expect(entries.every((e) => e.type === 'file' || e.data.length === 0)).toBe(true)
    }
  })

  it('refuses entry types it cannot represent, such as hard links', async () => {
    const dir = mkdtempSync(path.join(root, 'hardlink-'))
    writeFileSync(path.join(dir, 'a'), 'x')
    linkSync(path.join(dir, 'a'), path.join(dir, 'b'))
    const tarPath = path.join(dir, 'links.tar')
    execFileSync('tar', ['-cf', tarPath, '-C', dir, 'a', 'b'])
    await expect(collect(createReadStream(tarPath))).rejects.toThrow(/"b" at offset 1024 has type '1'/)
  })
})

describe('extractTar', () => {
  it('extracts a GNU tar archive with its files, directories, symlinks and modes', async () => {
    const dir = mkdtempSync(path.join(root, 'gnu-extract-'))
    const src = path.join(dir, 'src')
    const { longName, deepPath, longTarget } = makeTree(src)
    const tarPath = path.join(dir, 'tree.tar')
    execFileSync('tar', ['-cf', tarPath, '-C', src, '.'])
    const out = path.join(dir, 'out', 'nested')
    const result = await extractTar(createReadStream(tarPath, { highWaterMark: 1000 }), out)
    expect(result).toEqual({ files: 4, bytes: 11 + 3 * 512 + 17 + 9 + 4 })

    const list = (d: string) => readdirSync(d, { recursive: true, encoding: 'utf8' }).sort()
    expect(list(out)).toEqual(list(src))
    expect(readFileSync(path.join(out, 'hello.txt'), 'utf8')).toBe('hello, tar\n')
    expect(statSync(path.join(out, 'hello.txt')).mode & 0o7777).toBe(0o640)
    expect(statSync(path.join(out, 'sub')).mode & 0o7777).toBe(0o750)
    expect(statSync(path.join(out, 'sub', 'blocks.bin')).mode & 0o7777).toBe(0o600)
    expect(readFileSync(path.join(out, 'sub', 'blocks.bin')).equals(pattern(3 * 512 + 17, 21))).toBe(true)
    expect(lstatSync(path.join(out, 'link')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(path.join(out, 'link'))).toBe('hello.txt')
    expect(readlinkSync(path.join(out, 'sub', 'dangling'))).toBe(longTarget)
    expect(readFileSync(path.join(out, longName), 'utf8')).toBe('long name')
    expect(readFileSync(path.join(out, deepPath), 'utf8')).toBe('deep')
  })

  it('extracts what TarWriter wrote and replaces existing files', async () => {
    const dir = mkdtempSync(path.join(root, 'writer-extract-'))
    const { writer, archive } = collecting()
    await writer.file('base/1/16384', pattern(20_000, 41), { mode: 0o600 })
    await writer.directory('base', { mode: 0o700 })
    await writer.directory('readonly', { mode: 0o500 })
    await writer.file('readonly/inside', Buffer.from('still written'), { mode: 0o4755 })
    await writer.finish()
    mkdirSync(path.join(dir, 'base', '1'), { recursive: true })
    writeFileSync(path.join(dir, 'base', '1', '16384'), 'old content that is longer than nothing')
    const result = await extractTar(chunked(archive(), randomSizes(7, 3000)), dir)
    expect(result).toEqual({ files: 2, bytes: 20_000 + 13 })
    expect(readFileSync(path.join(dir, 'base', '1', '16384')).equals(pattern(20_000, 41))).toBe(true)
    expect(readFileSync(path.join(dir, 'readonly', 'inside'), 'utf8')).toBe('still written')
    expect(statSync(path.join(dir, 'readonly')).mode & 0o7777).toBe(0o500)
    // No setuid file from an archive: it would belong to whoever extracts, perhaps root.
    expect(statSync(path.join(dir, 'readonly', 'inside')).mode & 0o7777).toBe(0o755)
    chmodSync(path.join(dir, 'readonly'), 0o700)
  })

  it('refuses entries that would write outside the directory', async () => {
    const dir = mkdtempSync(path.join(root, 'escape-'))
    const outside = path.join(dir, 'outside')
    mkdirSync(outside)
    const cases: [string, Buffer][] = [
      ['absolute name', rawArchive(rawEntry(path.join(outside, 'abs'), '0', Buffer.from('x')))],
      ['".." name', rawArchive(rawEntry('../outside/dotdot', '0', Buffer.from('x')))],
      ['inner ".."', rawArchive(rawEntry('a/b/../../../outside/inner', '0', Buffer.from('x')))],
      ['".." directory', rawArchive(rawEntry('x/..', '5'))],
      [
        'a path through a symlink',
        rawArchive(
          rawEntry('link', '2', undefined, outside),
          rawEntry('link/through', '0', Buffer.from('x')),
        ),
      ],
      [
        'a directory through a symlink',
        rawArchive(rawEntry('up', '2', undefined, '..'), rawEntry('up/outside/newdir', '5')),
      ],
    ]
    for (const [what, archive] of cases) {
      const target = mkdtempSync(path.join(dir, 'target-'))
      await expect(
        extractTar(
          chunked(archive, () => 512),
          target,
        ),
        what,
      ).rejects.toThrow(TarError)
      expect(readdirSync(outside), what).toEqual([])
    }
    await expect(
      extractTar(
        chunked(rawArchive(rawEntry('/etc/zenith-test', '0')), () => 512),
        path.join(dir, 't'),
      ),
    ).rejects.toThrow('tar entry "/etc/zenith-test" has an absolute name')
    await expect(
      extractTar(
        chunked(rawArchive(rawEntry('a/../../x', '0')), () => 512),
        path.join(dir, 't'),
      ),
    ).rejects.toThrow('tar entry "a/../../x" has a ".." component')
    expect(existsSync('/etc/zenith-test')).toBe(false)

    // A symlink whose target escapes is fine as long as nothing is written through it.
    const ok = path.join(dir, 'ok')
    const archive = rawArchive(
      rawEntry('abs', '2', undefined, outside),
      rawEntry('file', '0', Buffer.from('y')),
    )
    await extractTar(
      chunked(archive, () => 100),
      ok,
    )
    expect(readlinkSync(path.join(ok, 'abs'))).toBe(outside)
    expect(readdirSync(outside)).toEqual([])

    // A file entry replaces a symlink of the same name instead of writing through it.
    const replaced = path.join(dir, 'replaced')
    const twice = rawArchive(
      rawEntry('f', '2', undefined, path.join(outside, 'target')),
      rawEntry('f', '0', Buffer.from('z')),
    )
    expect(
      await extractTar(
        chunked(twice, () => 512),
        replaced,
      ),
    ).toEqual({ files: 1, bytes: 1 })
    expect(lstatSync(path.join(replaced, 'f')).isFile()).toBe(true)
    expect(readFileSync(path.join(replaced, 'f'), 'utf8')).toBe('z')
    expect(readdirSync(outside)).toEqual([])
  })
})

describe('extractTar into a directory it replaces', () => {
  /** A datadir-like archive: a big file (written through the pool), small ones, and pg_control. */
  async function datadirArchive(): Promise<Buffer> {
    const { writer, archive } = collecting()
    await writer.directory('base')
    await writer.directory('base/1')
    await writer.file('base/1/big', pattern(600_000, 51))
    await writer.file('base/1/small', pattern(100, 52))
    await writer.file('base/1/was_a_dir', Buffer.from('now a file'))
    await writer.directory('global')
    await writer.file('global/pg_control', pattern(8192, 53))
    await writer.directory('pg_wal')
    await writer.directory('pg_wal/archive_status')
    await writer.finish()
    return archive()
  }

  function tree(dir: string): string[] {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()
  }

  it('ends with exactly the archive, files rewritten in place and cut to their length', async () => {
    const archive = await datadirArchive()
    const fresh = mkdtempSync(path.join(root, 'replace-fresh-'))
    await extractTar(chunked(archive, randomSizes(11, 70_000)), fresh)
    const dir = mkdtempSync(path.join(root, 'replace-'))
    mkdirSync(path.join(dir, 'base', '1', 'was_a_dir', 'deep'), { recursive: true })
    writeFileSync(path.join(dir, 'base', '1', 'was_a_dir', 'deep', 'f'), 'x')
    writeFileSync(path.join(dir, 'base', '1', 'big'), pattern(900_000, 1))
    writeFileSync(path.join(dir, 'base', '1', 'small'), pattern(5000, 2))
    writeFileSync(path.join(dir, 'base', '1', 'dropped'), 'a relation the archive no longer has')
    writeFileSync(path.join(dir, 'pg_wal'), 'a file where the archive has a directory')
    mkdirSync(path.join(dir, 'pg_stat_tmp', 'sub'), { recursive: true })
    writeFileSync(path.join(dir, 'postmaster.pid'), '12345')
    symlinkSync('/etc', path.join(dir, 'base', 'escape'))
    const inodes = ['big', 'small'].map((f) => statSync(path.join(dir, 'base', '1', f)).ino)

    const result = await extractTar(chunked(archive, randomSizes(12, 70_000)), dir, {
      replace: true,
      durable: true,
      commitMarker: 'global/pg_control',
    })
    expect(result).toEqual({ files: 4, bytes: 600_000 + 100 + 10 + 8192 })
    expect(tree(dir)).toEqual(tree(fresh))
    for (const f of tree(fresh).filter((f) => statSync(path.join(fresh, f)).isFile()))
      expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(fresh, f))), f).toBe(true)
    // Rewritten, not deleted and created anew: the inodes stay.
    expect(['big', 'small'].map((f) => statSync(path.join(dir, 'base', '1', f)).ino)).toEqual(inodes)
    expect(existsSync('/etc/passwd')).toBe(true)
  })

  it('never leaves the commit marker in a tree that was cut short or lacks it', async () => {
    const archive = await datadirArchive()
    const dir = mkdtempSync(path.join(root, 'marker-'))
    await extractTar(
      chunked(archive, () => 4096),
      dir,
      { replace: true, commitMarker: 'global/pg_control' },
    )
    expect(readFileSync(path.join(dir, 'global', 'pg_control')).equals(pattern(8192, 53))).toBe(true)

    // The stream breaks off after the big file, inside the small one: the old marker is gone, no new
    // one is written.
    const cut = archive.subarray(0, archive.indexOf(pattern(100, 52)) + 50)
    await expect(
      extractTar(
        chunked(cut, () => 4096),
        dir,
        { replace: true, commitMarker: 'global/pg_control' },
      ),
    ).rejects.toThrow(/truncated/)
    expect(existsSync(path.join(dir, 'global', 'pg_control'))).toBe(false)
    expect(existsSync(path.join(dir, 'base', '1', 'big'))).toBe(true)

    const { writer, archive: noMarker } = collecting()
    await writer.file('PG_VERSION', Buffer.from('15\n'))
    await writer.finish()
    await expect(
      extractTar(
        chunked(noMarker(), () => 512),
        dir,
        { replace: true, commitMarker: 'global/pg_control' },
      ),
    ).rejects.toThrow('tar archive has no "global/pg_control", which marks the extracted tree complete')
    expect(existsSync(path.join(dir, 'global', 'pg_control'))).toBe(false)
  })
})
