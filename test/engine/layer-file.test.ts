import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { KEY_MAX, KEY_MIN, KEY_SIZE, type KeyRange } from '../../src/engine/key.js'
import {
  type LayerCompression,
  LayerCorruptionError,
  type LayerEntry,
  LayerFileReader,
  LayerFileWriter,
  LayerWriteError,
} from '../../src/engine/layer-file.js'
import {
  formatLayerName,
  type LayerDesc,
  LayerNameError,
  parseLayerName,
} from '../../src/engine/layer-name.js'
import { PAGE_SIZE, PageCache } from '../../src/engine/page-cache.js'
import { randomInt } from '../harness/random.js'

const TENANT = '0123456789abcdef0123456789abcdef'
const TIMELINE = 'fedcba9876543210fedcba9876543210'

const root = mkdtempSync(path.join(os.tmpdir(), 'zenith-layer-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let dirs = 0
function freshDir(): string {
  const d = path.join(root, `d${dirs++}`)
  mkdirSync(d)
  return d
}

/** Keys that share prefixes the way relation blocks do: a few relations, many blocks each. */
function relKey(rel: number, block: number): Buffer {
  const k = Buffer.alloc(KEY_SIZE)
  k[0] = 0
  k.writeUInt32BE(1663, 1)
  k.writeUInt32BE(5, 5)
  k.writeUInt32BE(16384 + rel, 9)
  k[13] = 0
  k.writeUInt32BE(block, 14)
  return k
}

function randomBytes(rand: (n: number) => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = rand(256)
  return b
}

/** Values of every shape the engine stores: empty, small records, pages (some compressible), big blobs. */
function randomValue(rand: (n: number) => number): Buffer {
  const r = rand(100)
  if (r < 5) return Buffer.alloc(0)
  if (r < 60) return randomBytes(rand, 1 + rand(300))
  if (r < 75) return Buffer.alloc(PAGE_SIZE, rand(3))
  if (r < 90) return randomBytes(rand, PAGE_SIZE)
  if (r < 98) return randomBytes(rand, 8000 + rand(20000))
  return Buffer.concat([randomBytes(rand, 50 * 1024), Buffer.alloc(50 * 1024, 7)])
}

function compareEntries(a: LayerEntry, b: LayerEntry): number {
  return Buffer.compare(a.key, b.key) || a.lsn - b.lsn
}

function deltaModel(seed: number, count: number): LayerEntry[] {
  const rand = randomInt(seed)
  const entries: LayerEntry[] = []
  const seen = new Set<string>()
  // One key with hundreds of versions, so that newest-first walks cross several leaves.
  for (let lsn = 100; lsn < 100 + 700 * 8; lsn += 8) {
    entries.push({
      key: relKey(1, 42),
      lsn,
      value: randomBytes(rand, rand(40)),
      willInit: lsn % 400 === 100,
      image: false,
    })
  }
  // The largest value the engine is expected to store.
  entries.push({
    key: relKey(2, 5000),
    lsn: 777,
    value: randomBytes(rand, 1 << 20),
    willInit: true,
    image: false,
  })
  while (entries.length < count) {
    const key = relKey(rand(4), rand(2000))
    const lsn = 100 + rand(10_000)
    const id = `${key.toString('hex')}@${lsn}`
    if (seen.has(id) || key.equals(relKey(1, 42))) continue
    seen.add(id)
    entries.push({ key, lsn, value: randomValue(rand), willInit: rand(4) === 0, image: rand(3) === 0 })
  }
  return entries.sort(compareEntries)
}

function writeLayer(
  dir: string,
  kind: 'delta' | 'image',
  entries: LayerEntry[],
  opts: { compression?: LayerCompression; lsnStart?: number; lsnEnd?: number; keyRange?: KeyRange } = {},
) {
  const lsnStart = opts.lsnStart ?? (kind === 'image' ? entries[0].lsn : 100)
  const w = new LayerFileWriter({
    dir,
    kind,
    tenantId: TENANT,
    timelineId: TIMELINE,
    keyStart: opts.keyRange?.start ?? KEY_MIN,
    keyEnd: opts.keyRange?.end ?? KEY_MAX,
    lsnStart,
    lsnEnd: opts.lsnEnd ?? (kind === 'image' ? lsnStart + 1 : 20_000),
    compression: opts.compression,
  })
  for (const e of entries) w.add(e.key, e.lsn, e.value, e.willInit, e.image)
  return w.finish()
}

function distinctKeys(entries: LayerEntry[]): Buffer[] {
  const keys: Buffer[] = []
  for (const e of entries) if (keys.length === 0 || !keys[keys.length - 1].equals(e.key)) keys.push(e.key)
  return keys
}

function inRange(k: Buffer, r: KeyRange): boolean {
  return Buffer.compare(r.start, k) <= 0 && Buffer.compare(k, r.end) < 0
}

/** Entries as comparable strings: values are hashed down to their length and a few bytes. */
function show(e: LayerEntry): string {
  const v = e.value
  return `${e.key.toString('hex')}@${e.lsn} ${e.willInit ? 'init' : 'rec'}${e.image ? ' image' : ''} ${v.length}:${v.subarray(0, 4).toString('hex')}:${v.subarray(-4).toString('hex')}`
}

function visitAll(
  r: LayerFileReader,
  key: Buffer,
  floor: number,
  ceil: number,
  stopAtInit: boolean,
): LayerEntry[] {
  const out: LayerEntry[] = []
  r.visit(key, floor, ceil, (lsn, value, willInit, image) => {
    out.push({ key, lsn, value, willInit, image })
    return stopAtInit && willInit
  })
  return out
}

function expectedVisit(model: LayerEntry[], key: Buffer, floor: number, ceil: number, stopAtInit: boolean) {
  const out: LayerEntry[] = []
  const versions = model.filter((e) => e.key.equals(key) && e.lsn >= floor && e.lsn < ceil).reverse()
  for (const e of versions) {
    out.push(e)
    if (stopAtInit && e.willInit) break
  }
  return out
}

function checkAgainstModel(r: LayerFileReader, model: LayerEntry[], seed: number) {
  const rand = randomInt(seed)
  const all = [...r.entries()]
  // Compared after the whole scan: values must not be slots of the (tiny) cache that later reads reuse.
  expect(all.length).toBe(model.length)
  for (let i = 0; i < model.length; i++) {
    if (!all[i].value.equals(model[i].value) || show(all[i]) !== show(model[i])) {
      expect(show(all[i]), `entry ${i}`).toBe(show(model[i]))
    }
  }
  const keys = distinctKeys(model)
  expect([...r.keys()].map((k) => k.toString('hex'))).toEqual(keys.map((k) => k.toString('hex')))

  for (let i = 0; i < 15; i++) {
    const a = keys[rand(keys.length)]
    const b = rand(5) === 0 ? KEY_MAX : relKey(rand(5), rand(2100))
    const range = Buffer.compare(a, b) <= 0 ? { start: a, end: b } : { start: b, end: a }
    const want = model.filter((e) => inRange(e.key, range))
    expect([...r.entries(range)].map(show)).toEqual(want.map(show))
    expect([...r.keys(range)].map((k) => k.toString('hex'))).toEqual(
      distinctKeys(want).map((k) => k.toString('hex')),
    )
  }

  const probes = [
    relKey(1, 42),
    relKey(9, 9),
    KEY_MIN,
    ...Array.from({ length: 300 }, () => keys[rand(keys.length)]),
  ]
  for (const key of probes) {
    const floor = rand(3) === 0 ? 0 : rand(11_000)
    const ceil = rand(3) === 0 ? Number.MAX_SAFE_INTEGER : floor + rand(11_000)
    for (const stop of [true, false]) {
      const got = visitAll(r, key, floor, ceil, stop)
      const want = expectedVisit(model, key, floor, ceil, stop)
      expect(got.map(show), `${key.toString('hex')} [${floor}, ${ceil})`).toEqual(want.map(show))
      for (let i = 0; i < got.length; i++) expect(got[i].value.equals(want[i].value)).toBe(true)
    }
  }
}

describe('layer names', () => {
  const delta: LayerDesc = {
    kind: 'delta',
    keyStart: KEY_MIN,
    keyEnd: KEY_MAX,
    lsnStart: 0x169ac00,
    lsnEnd: 0x1c2a1a1,
  }

  it('formats and parses delta and image names in Neon scheme', () => {
    const name =
      '000000000000000000000000000000000000-FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF__000000000169AC00-0000000001C2A1A1'
    expect(formatLayerName(delta)).toBe(name)
    expect(parseLayerName(name)).toEqual(delta)
    const image: LayerDesc = {
      kind: 'image',
      keyStart: relKey(1, 0),
      keyEnd: relKey(1, 500),
      lsnStart: 2 ** 40 + 5,
      lsnEnd: 2 ** 40 + 6,
    }
    const imageName = formatLayerName(image)
    expect(imageName).toBe(
      '000000067F00000005000040010000000000-000000067F000000050000400100000001F4__0000010000000005',
    )
    expect(parseLayerName(imageName)).toEqual(image)
  })

  it('round-trips random descriptions', () => {
    const rand = randomInt(7)
    for (let i = 0; i < 500; i++) {
      const a = randomBytes(rand, KEY_SIZE)
      const b = randomBytes(rand, KEY_SIZE)
      if (a.equals(b)) continue
      const [keyStart, keyEnd] = Buffer.compare(a, b) < 0 ? [a, b] : [b, a]
      const lsnStart = rand(2) ? rand(1000) : Math.floor(rand(2 ** 21) * 2 ** 31)
      const d: LayerDesc =
        rand(2) === 0
          ? { kind: 'image', keyStart, keyEnd, lsnStart, lsnEnd: lsnStart + 1 }
          : { kind: 'delta', keyStart, keyEnd, lsnStart, lsnEnd: lsnStart + 1 + rand(2 ** 30) }
      expect(parseLayerName(formatLayerName(d))).toEqual(d)
    }
  })

  it('returns null for names that are not layers', () => {
    const good = formatLayerName(delta)
    for (const name of [
      '',
      'metadata',
      'ephemeral-3',
      `${good}.___temp`,
      good.toLowerCase(),
      good.slice(1),
      `${good}-v1-00000001`,
      good.replace('__', '_'),
      // empty or inverted ranges
      `${'0'.repeat(36)}-${'0'.repeat(36)}__${'0'.repeat(16)}-${'1'.padStart(16, '0')}`,
      `${'0'.repeat(36)}-${'F'.repeat(36)}__${'2'.padStart(16, '0')}-${'1'.padStart(16, '0')}`,
      // LSNs above 2^53, and an image whose end would be 2^53
      `${'0'.repeat(36)}-${'F'.repeat(36)}__${'F'.repeat(16)}`,
      `${'0'.repeat(36)}-${'F'.repeat(36)}__${'0'.repeat(16)}-${'0020000000000000'}`,
      `${'0'.repeat(36)}-${'F'.repeat(36)}__001FFFFFFFFFFFFF`,
    ]) {
      expect(parseLayerName(name), name).toBeNull()
    }
  })

  it('refuses to name an invalid description', () => {
    expect(() => formatLayerName({ ...delta, lsnEnd: delta.lsnStart })).toThrow(LayerNameError)
    expect(() => formatLayerName({ ...delta, keyEnd: KEY_MIN })).toThrow(LayerNameError)
    expect(() => formatLayerName({ ...delta, kind: 'image' })).toThrow(/\[lsn, lsn\+1\)/)
    expect(() => formatLayerName({ ...delta, lsnEnd: 2 ** 53 })).toThrow(LayerNameError)
  })
})

describe('layer files', () => {
  for (const compression of ['none', 'lz4'] as const) {
    it(`round-trips a delta layer of random entries (${compression})`, () => {
      const dir = freshDir()
      const model = deltaModel(compression === 'none' ? 11 : 12, 3000)
      const { path: file, summary } = writeLayer(dir, 'delta', model, { compression })
      expect(path.basename(file)).toBe(formatLayerName(summary))
      expect(readdirSync(dir)).toEqual([path.basename(file)])
      const valueBytes = model.reduce((n, e) => n + e.value.length, 0)
      expect(summary).toMatchObject({
        kind: 'delta',
        tenantId: TENANT,
        timelineId: TIMELINE,
        lsnStart: 100,
        lsnEnd: 20_000,
        entries: model.length,
        keys: distinctKeys(model).length,
        valueBytes,
        compression,
      })
      // The stream also holds the padding that keeps a value of up to 8 KiB within one block.
      if (compression === 'none') expect(summary.storedValueBytes).toBeGreaterThanOrEqual(valueBytes)
      else expect(summary.storedValueBytes).toBeLessThan(valueBytes * 0.9)

      const reader = LayerFileReader.open(file, new PageCache(3))
      expect(reader.summary).toEqual(summary)
      reader.verify()
      checkAgainstModel(reader, model, 21)
      reader.close()
    })
  }

  it('round-trips an image layer', () => {
    const dir = freshDir()
    const rand = randomInt(5)
    const keys = new Map<string, Buffer>()
    while (keys.size < 1500) {
      const k = relKey(rand(3), rand(5000))
      keys.set(k.toString('hex'), k)
    }
    const model = [...keys.values()]
      .sort(Buffer.compare)
      .map((key) => ({ key, lsn: 5000, value: randomValue(rand), willInit: true, image: true }))
    const keyRange = { start: relKey(0, 0), end: relKey(3, 0) }
    const { path: file, summary } = writeLayer(dir, 'image', model, { compression: 'lz4', keyRange })
    expect(path.basename(file)).toMatch(/^[0-9A-F]{36}-[0-9A-F]{36}__0000000000001388$/)
    expect(summary).toMatchObject({ kind: 'image', lsnStart: 5000, lsnEnd: 5001, entries: 1500, keys: 1500 })
    const reader = LayerFileReader.open(file, new PageCache(8))
    checkAgainstModel(reader, model, 6)
    // Absent keys, and LSN windows that miss the image's LSN, find nothing.
    expect(visitAll(reader, relKey(7, 1), 0, 10_000, true)).toEqual([])
    expect(visitAll(reader, model[3].key, 0, 5000, true)).toEqual([])
    expect(visitAll(reader, model[3].key, 5001, 10_000, true)).toEqual([])
    expect(visitAll(reader, model[3].key, 5000, 5001, true).map(show)).toEqual([show(model[3])])
    reader.close()
  })

  it('stores an 8 KiB page image in exactly one block, after values that do not fill theirs', () => {
    const dir = freshDir()
    const rand = randomInt(5)
    const model: LayerEntry[] = []
    for (let i = 0; i < 64; i++) {
      model.push({ key: relKey(0, i), lsn: 200, value: randomBytes(rand, 8192), willInit: true, image: true })
      model.push({ key: relKey(0, i), lsn: 208, value: randomBytes(rand, 30), willInit: false, image: false })
    }
    const { path: file, summary } = writeLayer(dir, 'delta', model)
    const cache = new PageCache(256)
    const reader = LayerFileReader.open(file, cache)
    // 64 pages, plus the blocks holding the small records between them.
    expect(summary.storedValueBytes / PAGE_SIZE).toBeLessThanOrEqual(64 * 2)
    const before = cache.stats().misses
    const got = visitAll(reader, relKey(0, 17), 0, 205, false)
    expect(got.map(show)).toEqual(expectedVisit(model, relKey(0, 17), 0, 205, false).map(show))
    expect(got[0].image).toBe(true)
    // The index (one leaf holds all 128 entries) and one data block: the page does not straddle two.
    expect(cache.stats().misses - before).toBe(2)
    reader.close()
  })

  it('writes and reads an empty layer', () => {
    const dir = freshDir()
    const { path: file, summary } = writeLayer(dir, 'image', [], { lsnStart: 9 })
    expect(summary).toMatchObject({ entries: 0, keys: 0, fileSize: PAGE_SIZE })
    const reader = LayerFileReader.open(file, new PageCache(2))
    expect([...reader.entries()]).toEqual([])
    expect(visitAll(reader, relKey(0, 0), 0, 100, false)).toEqual([])
    reader.close()
  })

  it('finds an entry among 100k in a number of block reads logarithmic in the size', () => {
    const dir = freshDir()
    const w = new LayerFileWriter({
      dir,
      kind: 'delta',
      tenantId: TENANT,
      timelineId: TIMELINE,
      keyStart: KEY_MIN,
      keyEnd: KEY_MAX,
      lsnStart: 0,
      lsnEnd: 1000,
    })
    const value = (block: number, lsn: number) => Buffer.alloc(40, (block + lsn) % 251)
    for (let block = 0; block < 25_000; block++) {
      for (const lsn of [10, 20, 30, 40]) w.add(relKey(0, block), lsn, value(block, lsn), lsn === 10)
    }
    const { path: file, summary } = w.finish()
    expect(summary.entries).toBe(100_000)
    const blocks = summary.fileSize / PAGE_SIZE
    expect(blocks).toBeGreaterThan(900)

    const cache = new PageCache(64)
    const rand = randomInt(3)
    for (let i = 0; i < 50; i++) {
      // A fresh reader has nothing cached (open reads the header directly): every lookup starts cold.
      const reader = LayerFileReader.open(file, cache)
      const before = cache.stats().misses
      const block = rand(25_000)
      const got = visitAll(reader, relKey(0, block), 0, 35, true)
      expect(got.map((e) => e.lsn)).toEqual([30, 20, 10])
      expect(got[0].value.equals(value(block, 30))).toBe(true)
      // 100k entries of 36 bytes: ~440 leaves, 2 level-1 nodes, a root. Three index blocks, maybe the
      // neighbouring leaf when the key's versions straddle two, and the three 40-byte values lie in at most
      // two data blocks.
      expect(cache.stats().misses - before).toBeLessThanOrEqual(3 + 1 + 2)
      reader.close()
    }
  })

  it('refuses entries out of order or out of range', () => {
    const dir = freshDir()
    const w = new LayerFileWriter({
      dir,
      kind: 'delta',
      tenantId: TENANT,
      timelineId: TIMELINE,
      keyStart: relKey(0, 10),
      keyEnd: relKey(0, 20),
      lsnStart: 100,
      lsnEnd: 200,
    })
    const v = Buffer.from('x')
    w.add(relKey(0, 12), 150, v, true)
    expect(() => w.add(relKey(0, 12), 150, v, false)).toThrow(LayerWriteError)
    expect(() => w.add(relKey(0, 12), 149, v, false)).toThrow(/increasing \(key, lsn\) order/)
    expect(() => w.add(relKey(0, 11), 160, v, false)).toThrow(LayerWriteError)
    expect(() => w.add(relKey(0, 9), 160, v, false)).toThrow(/outside the layer's key range/)
    expect(() => w.add(relKey(0, 20), 160, v, false)).toThrow(/outside the layer's key range/)
    expect(() => w.add(relKey(0, 13), 99, v, false)).toThrow(/outside the layer's LSN range/)
    expect(() => w.add(relKey(0, 13), 200, v, false)).toThrow(/outside the layer's LSN range/)
    expect(() => w.add(relKey(0, 13), 150.5, v, false)).toThrow(LayerWriteError)
    expect(() => w.add(Buffer.alloc(17), 150, v, false)).toThrow(/18 bytes/)
    // Refused entries leave the writer usable.
    w.add(relKey(0, 12), 151, v, false)
    w.add(relKey(0, 13), 100, v, true)
    expect(() => w.finish({ keyEnd: relKey(0, 13) })).toThrow(/must lie above/)
    const { summary } = w.finish({ keyEnd: relKey(0, 14) })
    expect(summary.keyEnd).toEqual(relKey(0, 14))
    expect(summary.entries).toBe(3)
    expect(() => w.add(relKey(0, 13), 101, v, false)).toThrow(/finished/)

    const img = new LayerFileWriter({
      dir,
      kind: 'image',
      tenantId: TENANT,
      timelineId: TIMELINE,
      keyStart: KEY_MIN,
      keyEnd: KEY_MAX,
      lsnStart: 50,
      lsnEnd: 51,
    })
    img.add(relKey(0, 1), 50, v, true)
    expect(() => img.add(relKey(0, 1), 50, v, true)).toThrow(/one per key/)
    expect(() => img.add(relKey(0, 2), 49, v, true)).toThrow(/outside the layer's LSN range/)
    expect(() => img.add(relKey(0, 2), 51, v, true)).toThrow(/outside the layer's LSN range/)
    img.abort()

    const bad = { dir, tenantId: TENANT, timelineId: TIMELINE, keyStart: KEY_MIN, keyEnd: KEY_MAX }
    expect(() => new LayerFileWriter({ ...bad, kind: 'image', lsnStart: 5, lsnEnd: 7 })).toThrow(
      LayerWriteError,
    )
    expect(() => new LayerFileWriter({ ...bad, kind: 'delta', lsnStart: 5, lsnEnd: 5 })).toThrow(
      LayerWriteError,
    )
    expect(
      () => new LayerFileWriter({ ...bad, kind: 'delta', lsnStart: 0, lsnEnd: 5, tenantId: 'x' }),
    ).toThrow(/tenant id/)
  })

  it('leaves no temp file after finish or abort', () => {
    const dir = freshDir()
    const opts = {
      dir,
      kind: 'delta' as const,
      tenantId: TENANT,
      timelineId: TIMELINE,
      keyStart: KEY_MIN,
      keyEnd: KEY_MAX,
      lsnStart: 1,
      lsnEnd: 2,
    }
    const w = new LayerFileWriter(opts)
    w.add(relKey(0, 0), 1, Buffer.alloc(20_000, 1), true)
    expect(readdirSync(dir).some((n) => n.endsWith('.___temp'))).toBe(true)
    // Header, three value blocks and the open leaf: the size the file will have.
    expect(w.bytesWritten).toBe(5 * PAGE_SIZE)
    const { path: file, summary } = w.finish()
    expect(summary.fileSize).toBe(5 * PAGE_SIZE)
    expect(w.bytesWritten).toBe(5 * PAGE_SIZE)
    expect(readdirSync(dir)).toEqual([path.basename(file)])
    w.abort()
    expect(readdirSync(dir)).toEqual([path.basename(file)])

    const other = new LayerFileWriter({ ...opts, lsnStart: 2, lsnEnd: 3 })
    other.add(relKey(0, 0), 2, Buffer.alloc(20_000, 1), true)
    other.abort()
    other.abort()
    expect(readdirSync(dir)).toEqual([path.basename(file)])
    expect(() => other.finish()).toThrow(/aborted/)
  })

  it('caches blocks while open and forgets them on close', () => {
    const dir = freshDir()
    const { path: file } = writeLayer(dir, 'delta', deltaModel(3, 300))
    const cache = new PageCache(32)
    const reader = LayerFileReader.open(file, cache)
    for (const _ of reader.entries()) {
      // reading fills the cache
    }
    expect(cache.stats().used).toBeGreaterThan(0)
    reader.close()
    expect(cache.stats().used).toBe(0)
    expect(() => [...reader.entries()]).toThrow(/closed/)
    reader.close()
  })
})

describe('layer file corruption', () => {
  /** A small layer of a dozen blocks: header, value blocks, two leaves and a root. */
  function smallLayer(): { dir: string; file: string; model: LayerEntry[] } {
    const dir = freshDir()
    const rand = randomInt(99)
    const model: LayerEntry[] = []
    for (let i = 0; i < 300; i++) {
      model.push({
        key: relKey(0, i),
        lsn: 150,
        value: randomBytes(rand, 1 + rand(600)),
        willInit: true,
        image: false,
      })
    }
    const { path: file } = writeLayer(dir, 'delta', model, { compression: 'lz4' })
    return { dir, file, model }
  }

  /** Reads everything through the normal read path. */
  function readEverything(file: string, model: LayerEntry[]): void {
    const reader = LayerFileReader.open(file, new PageCache(4))
    try {
      for (const _ of reader.entries()) {
        // values are read and checked on the way
      }
      for (const e of model) visitAll(reader, e.key, 0, 1000, false)
    } finally {
      reader.close()
    }
  }

  function expectCorruption(fn: () => void, file: string, blockNo: number): void {
    let caught: unknown
    try {
      fn()
    } catch (err) {
      caught = err
    }
    expect(caught, `block ${blockNo}`).toBeInstanceOf(LayerCorruptionError)
    const err = caught as LayerCorruptionError
    expect(err.file).toBe(file)
    expect(err.offset).toBe(blockNo * PAGE_SIZE)
    // Header and index blocks fail as blocks; in data blocks the value starting there fails its own CRC.
    expect(err.message).toMatch(
      new RegExp(
        `^layer file ${file}: (block ${blockNo} \\(offset ${blockNo * PAGE_SIZE}\\)|the \\d+-byte value at offset ${blockNo * PAGE_SIZE} )`,
      ),
    )
  }

  it('reads the intact file', () => {
    const { file, model } = smallLayer()
    readEverything(file, model)
  })

  it('detects a flipped byte in every block, on the read path and in verify()', () => {
    const { dir, file, model } = smallLayer()
    const original = readFileSync(file)
    const blocks = original.length / PAGE_SIZE
    expect(blocks).toBeGreaterThanOrEqual(10)
    const rand = randomInt(4)
    const dataBlocks = LayerFileReader.open(file, new PageCache(2)).summary.storedValueBytes / PAGE_SIZE
    for (let b = 0; b < blocks; b++) {
      // Header and index blocks: a payload byte, and a byte of the block's CRC. Data blocks have no CRC of
      // their own; each starts with a value (none of these straddles a block), whose CRC must catch it.
      const data = b >= 1 && b <= Math.ceil(dataBlocks)
      for (const at of data ? [0] : [rand(PAGE_SIZE - 4), PAGE_SIZE - 1 - rand(4)]) {
        const damaged = Buffer.from(original)
        damaged[b * PAGE_SIZE + at] ^= 1 << rand(8)
        writeFileSync(file, damaged)
        expectCorruption(() => readEverything(file, model), file, b)
        if (b > 0) {
          const reader = LayerFileReader.open(file, new PageCache(4))
          expectCorruption(() => reader.verify(), file, b)
          reader.close()
        }
      }
    }
    writeFileSync(file, original)
    readEverything(file, model)
    expect(readdirSync(dir)).toEqual([path.basename(file)])
  })

  it('detects a block written in the wrong place', () => {
    const { file, model } = smallLayer()
    const damaged = readFileSync(file)
    damaged.copy(damaged, 2 * PAGE_SIZE, 1 * PAGE_SIZE, 2 * PAGE_SIZE)
    writeFileSync(file, damaged)
    expectCorruption(() => readEverything(file, model), file, 2)
  })

  it('refuses truncated, extended, misnamed and foreign files', () => {
    const { dir, file } = smallLayer()
    const original = readFileSync(file)
    const size = original.length
    const open = () => LayerFileReader.open(file, new PageCache(2))
    for (const cut of [size - 1, size - PAGE_SIZE, PAGE_SIZE + 100, PAGE_SIZE]) {
      writeFileSync(file, original)
      truncateSync(file, cut)
      expect(open).toThrow(LayerCorruptionError)
      expect(open).toThrow(/is truncated/)
    }
    for (const cut of [0, 100, PAGE_SIZE - 1]) {
      writeFileSync(file, original)
      truncateSync(file, cut)
      expect(open).toThrow(/too short to hold its header block/)
    }
    writeFileSync(file, original)
    appendFileSync(file, Buffer.alloc(10))
    expect(open).toThrow(/bytes after its last block/)

    writeFileSync(file, original)
    const misnamed = path.join(
      dir,
      formatLayerName({ ...parseLayerName(path.basename(file))!, lsnEnd: 30_000 }),
    )
    renameSync(file, misnamed)
    expect(() => LayerFileReader.open(misnamed, new PageCache(2))).toThrow(/which is not this file's name/)

    const foreign = path.join(dir, 'foreign')
    writeFileSync(foreign, Buffer.alloc(3 * PAGE_SIZE, 0))
    // Its magic is checked before its CRC: a file that is no layer at all is named as such.
    expect(() => LayerFileReader.open(foreign, new PageCache(2))).toThrow(
      /block 0 \(offset 0\) is not a valid header: magic 0x0, not a zenith layer file/,
    )
    copyFileSync(misnamed, foreign)
    expect(() => LayerFileReader.open(foreign, new PageCache(2))).toThrow(LayerCorruptionError)
  })
})
