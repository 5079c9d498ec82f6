import { describe, expect, it } from 'vitest'
import { PAGE_SIZE, PageCache } from '../../src/engine/page-cache.js'
import { randomInt } from '../harness/random.js'

/** Recognisable block contents: the file id and block number, repeated. */
function pattern(fileId: number, blockNo: number): Buffer {
  const p = Buffer.alloc(8)
  p.writeUInt32BE(fileId, 0)
  p.writeUInt32BE(blockNo, 4)
  return p
}

function fill(fileId: number, blockNo: number) {
  return (out: Buffer) => {
    out.fill(pattern(fileId, blockNo))
  }
}

function holds(buf: Buffer, fileId: number, blockNo: number): boolean {
  return buf.equals(Buffer.alloc(PAGE_SIZE, pattern(fileId, blockNo)))
}

/** Reads a block and says whether it came from the cache. */
function cached(cache: PageCache, fileId: number, blockNo: number): boolean {
  let loaded = false
  const buf = cache.read(fileId, blockNo, (out) => {
    loaded = true
    fill(fileId, blockNo)(out)
  })
  expect(holds(buf, fileId, blockNo)).toBe(true)
  return !loaded
}

describe('PageCache', () => {
  it('loads a block once and serves it from the cache afterwards', () => {
    const cache = new PageCache(4)
    const f = cache.newFileId()
    expect(cached(cache, f, 7)).toBe(false)
    expect(cached(cache, f, 7)).toBe(true)
    expect(cached(cache, f, 8)).toBe(false)
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, evictions: 0, used: 2 })
    expect(cache.slots).toBe(4)
  })

  it('hands out distinct file ids and keeps their blocks apart', () => {
    const cache = new PageCache(8)
    const a = cache.newFileId()
    const b = cache.newFileId()
    expect(a).not.toBe(b)
    expect(cached(cache, a, 0)).toBe(false)
    expect(cached(cache, b, 0)).toBe(false)
    expect(cached(cache, a, 0)).toBe(true)
    expect(cached(cache, b, 0)).toBe(true)
  })

  it('evicts in clock order: a block used again gets a second chance', () => {
    // Each probe runs on a fresh cache with the same history, since probing changes usage counts.
    const after = (history: number[], probe: number) => {
      const cache = new PageCache(4)
      const f = cache.newFileId()
      for (const b of history) cached(cache, f, b)
      return cached(cache, f, probe)
    }
    // Blocks 0..3 fill the cache with usage 1; reading 1 again raises it to 2.
    const base = [0, 1, 2, 3, 1]
    // The hand lowers every count once (1 keeps 1), then takes block 0 on its second pass, then 2 and 3;
    // block 1 goes only on the fourth eviction, after its extra count has been spent.
    const order = [0, 2, 3, 1]
    for (let n = 1; n <= 4; n++) {
      const history = [...base, ...[4, 5, 6, 7].slice(0, n)]
      for (const b of [0, 1, 2, 3]) {
        expect(after(history, b), `block ${b} after ${n} evictions`).toBe(!order.slice(0, n).includes(b))
      }
    }
  })

  it('keeps a frequently used block through a scan larger than the cache', () => {
    const cache = new PageCache(16)
    const f = cache.newFileId()
    const scan = cache.newFileId()
    for (let i = 0; i < 5; i++) cached(cache, f, 0)
    for (let b = 0; b < 32; b++) expect(cached(cache, scan, b)).toBe(false)
    expect(cached(cache, f, 0)).toBe(true)
    // The scan's first blocks, read once, did not survive it.
    expect(cached(cache, scan, 0)).toBe(false)
  })

  it('forgets every block of one file, and the freed slots are taken before anything is evicted', () => {
    const cache = new PageCache(8)
    const a = cache.newFileId()
    const b = cache.newFileId()
    for (let i = 0; i < 4; i++) cached(cache, a, i)
    for (let i = 0; i < 4; i++) cached(cache, b, i)
    cache.forget(a)
    expect(cache.stats().used).toBe(4)
    for (let i = 0; i < 4; i++) expect(cached(cache, b, i)).toBe(true)
    const c = cache.newFileId()
    for (let i = 0; i < 4; i++) expect(cached(cache, c, i)).toBe(false)
    expect(cache.stats()).toMatchObject({ evictions: 0, used: 8 })
    for (let i = 0; i < 4; i++) expect(cached(cache, a, i)).toBe(false)
  })

  it('caches nothing when a load throws, and the slot stays usable', () => {
    const cache = new PageCache(2)
    const f = cache.newFileId()
    cached(cache, f, 0)
    expect(() =>
      cache.read(f, 1, () => {
        throw new Error('disk on fire')
      }),
    ).toThrow('disk on fire')
    expect(cache.stats().used).toBe(1)
    expect(cached(cache, f, 1)).toBe(false)
    expect(cached(cache, f, 1)).toBe(true)
    expect(cached(cache, f, 0)).toBe(true)
    expect(cache.stats().evictions).toBe(0)
  })

  it('refuses bad sizes, block numbers and file ids', () => {
    expect(() => new PageCache(0)).toThrow(RangeError)
    expect(() => new PageCache(1.5)).toThrow(RangeError)
    const cache = new PageCache(1)
    const f = cache.newFileId()
    const load = fill(f, 0)
    expect(() => cache.read(f, -1, load)).toThrow(RangeError)
    expect(() => cache.read(f, 2 ** 24, load)).toThrow(RangeError)
    expect(() => cache.read(f, 0.5, load)).toThrow(RangeError)
    expect(() => cache.read(f + 1, 0, load)).toThrow(/newFileId/)
    expect(() => cache.read(0, 0, load)).toThrow(/newFileId/)
  })

  it('agrees with a reference model of the clock over random operations', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const rand = randomInt(seed)
      const slots = 2 + rand(12)
      const cache = new PageCache(slots)
      const files = [cache.newFileId(), cache.newFileId(), cache.newFileId()]
      // The model: a plain array scanned linearly, no Map, the algorithm as the module comment states it.
      const model: { key: string | null; usage: number }[] = Array.from({ length: slots }, () => ({
        key: null,
        usage: 0,
      }))
      let hand = 0
      const counts = { hits: 0, misses: 0, evictions: 0 }
      let step = 0

      const readBoth = (f: number, block: number, failing: boolean) => {
        step++
        const key = `${f}/${block}`
        const hitSlot = model.find((s) => s.key === key)
        if (hitSlot) {
          counts.hits++
          hitSlot.usage = Math.min(5, hitSlot.usage + 1)
        } else {
          counts.misses++
          for (;;) {
            const s = model[hand]
            hand = (hand + 1) % slots
            if (s.usage === 0) {
              if (s.key !== null) counts.evictions++
              s.key = failing ? null : key
              s.usage = failing ? 0 : 1
              break
            }
            s.usage--
          }
        }
        let loaded = false
        const load = (out: Buffer) => {
          loaded = true
          if (failing) throw new Error('injected')
          fill(f, block)(out)
        }
        let outcome: string
        try {
          outcome = holds(cache.read(f, block, load), f, block) ? 'right bytes' : 'wrong bytes'
        } catch (err) {
          outcome = (err as Error).message
        }
        const want = { ...counts, used: model.filter((s) => s.key !== null).length }
        // One string comparison per step: expect() on each of the many steps would dominate the test's time.
        const got = `${outcome} ${loaded} ${JSON.stringify(cache.stats())}`
        const expected = `${!hitSlot && failing ? 'injected' : 'right bytes'} ${!hitSlot} ${JSON.stringify(want)}`
        if (got !== expected) expect(got, `seed ${seed} step ${step}`).toBe(expected)
      }

      // A mix of what a layer reader does: point reads, a hot block read over and over, sequential scans.
      for (let op = 0; op < 1500; op++) {
        const f = files[rand(files.length)]
        const r = rand(100)
        if (r < 3) {
          cache.forget(f)
          for (const s of model) {
            if (s.key?.startsWith(`${f}/`)) {
              s.key = null
              s.usage = 0
            }
          }
        } else if (r < 40) {
          const block = rand(4)
          for (let n = 1 + rand(7); n > 0; n--) readBoth(f, block, false)
        } else if (r < 55) {
          const first = rand(4 * slots)
          for (let n = 1 + rand(2 * slots); n > 0; n--) readBoth(f, first + n, rand(50) === 0)
        } else {
          readBoth(f, rand(4 * slots), rand(20) === 0)
        }
      }
    }
  })
})
