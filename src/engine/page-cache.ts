/**
 * The page cache: a fixed pool of 8 KiB slots holding immutable blocks of files (layer files, ephemeral
 * files), shared by every tenant so that memory use stays flat however many layers are open.
 *
 * Eviction is the clock (second-chance) sweep Neon uses: a hit raises the slot's usage count up to 5, the
 * sweeping hand lowers it by one per pass and takes the first slot it finds at 0. A block read once by a
 * scan enters at 1 and is gone after one or two turns of the hand, while an index root read on every lookup
 * sits at 5 and outlives a scan of several times the cache size, which plain LRU would not allow.
 *
 * Everything is synchronous and single-threaded: `load` fills the slot before `read` returns, so no slot
 * is ever half-loaded when another caller looks, and there is nothing to lock.
 */

export const PAGE_SIZE = 8192

const MAX_USAGE = 5

/**
 * Slots are found by a numeric Map key `fileId * 2^24 + blockNo`, which stays an exact integer below 2^53
 * while fileId < 2^29 and blockNo < 2^24: 536 million file ids in a process lifetime, files up to 128 GiB
 * (layer files are a few GiB at most). A number key hashes much faster than a string would.
 */
const BLOCK_BITS = 24
export const MAX_BLOCKS_PER_FILE = 2 ** BLOCK_BITS
const MAX_FILE_ID = 2 ** 29

export class PageCache {
  readonly slots: number
  private readonly views: Buffer[] = []
  private readonly usage: Uint8Array
  /** The Map key each slot holds, -1 for a free slot; kept so an evicted slot can leave the Map. */
  private readonly slotKey: Float64Array
  private readonly map = new Map<number, number>()
  private hand = 0
  private nextFileId = 1
  private hits = 0
  private misses = 0
  private evictions = 0

  constructor(slots: number) {
    if (!Number.isSafeInteger(slots) || slots < 1) {
      throw new RangeError(`a page cache needs a whole number of slots >= 1, got ${slots}`)
    }
    this.slots = slots
    const pool = Buffer.alloc(slots * PAGE_SIZE)
    for (let i = 0; i < slots; i++) this.views.push(pool.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))
    this.usage = new Uint8Array(slots)
    this.slotKey = new Float64Array(slots).fill(-1)
  }

  /** A fresh id for a file whose blocks will be cached (ids are never reused). */
  newFileId(): number {
    if (this.nextFileId >= MAX_FILE_ID) throw new RangeError('page cache: file ids exhausted')
    return this.nextFileId++
  }

  /**
   * The block's bytes: from the cache, or loaded with `load(out)`, which must fill the 8 KiB `out` slot
   * synchronously (and must not call back into the cache). The returned Buffer is the slot itself: use it
   * before the next await or cache call, never keep or modify it. If `load` throws, nothing is cached.
   */
  read(fileId: number, blockNo: number, load: (out: Buffer) => void): Buffer {
    if (!(blockNo >= 0 && blockNo < MAX_BLOCKS_PER_FILE && Number.isInteger(blockNo))) {
      throw new RangeError(`page cache: block number ${blockNo} is outside 0 .. 2^${BLOCK_BITS}-1`)
    }
    if (!(fileId >= 1 && fileId < this.nextFileId && Number.isInteger(fileId))) {
      throw new RangeError(`page cache: file id ${fileId} was not handed out by newFileId()`)
    }
    const key = fileId * MAX_BLOCKS_PER_FILE + blockNo
    const hit = this.map.get(key)
    if (hit !== undefined) {
      this.hits++
      if (this.usage[hit] < MAX_USAGE) this.usage[hit]++
      return this.views[hit]
    }
    this.misses++
    const slot = this.takeSlot()
    const out = this.views[slot]
    // Mapped only once loaded: when load throws, the slot stays free (no key, count 0).
    load(out)
    this.map.set(key, slot)
    this.slotKey[slot] = key
    this.usage[slot] = 1
    return out
  }

  /** Drops every cached block of a file (file deleted or rewritten). */
  forget(fileId: number): void {
    const lo = fileId * MAX_BLOCKS_PER_FILE
    const hi = lo + MAX_BLOCKS_PER_FILE
    // A scan of the slot keys is a few microseconds per thousand slots, and forgetting happens only when a
    // layer is closed, so a per-file index of slots would cost more on every read than it saves here.
    for (let s = 0; s < this.slots; s++) {
      const key = this.slotKey[s]
      if (key >= lo && key < hi) {
        this.map.delete(key)
        this.slotKey[s] = -1
        this.usage[s] = 0
      }
    }
  }

  stats(): { hits: number; misses: number; evictions: number; used: number } {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, used: this.map.size }
  }

  /**
   * The first slot under the hand that is free or whose count has dropped to 0. Free slots (never used,
   * forgotten, or left by a failed load) carry count 0, so they need no list of their own: the hand reaches
   * them on its way, and a block it evicts first is one nobody has touched for a full turn.
   */
  private takeSlot(): number {
    // Ends within MAX_USAGE + 1 turns of the hand: every pass lowers each non-zero count.
    for (;;) {
      const s = this.hand
      this.hand = s + 1 === this.slots ? 0 : s + 1
      if (this.usage[s] === 0) {
        if (this.slotKey[s] >= 0) {
          this.map.delete(this.slotKey[s])
          this.slotKey[s] = -1
          this.evictions++
        }
        return s
      }
      this.usage[s]--
    }
  }
}
