/**
 * The open layer of a timeline: every value written since the last freeze, indexed by key, the bytes in
 * an ephemeral file. Frozen (its end LSN set) when it has taken checkpoint_distance bytes or grown old,
 * then written out as an L0 delta layer by the flush task and dropped.
 */
import { EphemeralFile } from './ephemeral-file.js'
import { keyFromStr, keyStr } from './key.js'
import type { LayerEntry, LayerVisitor } from './layer-file.js'
import type { PageCache } from './page-cache.js'
import { storedForm } from './value.js'

/** Versions of one key: flat triples [lsn, offset, len * 2 + willInit], in increasing LSN order. */
type Versions = number[]

export class InMemoryLayer {
  private readonly index = new Map<string, Versions>()
  private readonly file: EphemeralFile
  /** Exclusive end, set by freeze(). */
  private end: number | null = null
  /** Highest LSN written: a freeze point must not be below it. */
  maxLsn: number
  readonly openedAt = Date.now()
  /** Times this layer was written since the memory budget's last sweep (GClock reference count). */
  refs = 0

  constructor(
    readonly lsnStart: number,
    filePath: string,
    cache: PageCache,
  ) {
    this.file = new EphemeralFile(filePath, cache)
    this.maxLsn = lsnStart - 1
  }

  get lsnEnd(): number | null {
    return this.end
  }

  get frozen(): boolean {
    return this.end !== null
  }

  /** Bytes of values held: what checkpoint_distance and the memory budget count. */
  get size(): number {
    return this.file.size
  }

  get keyCount(): number {
    return this.index.size
  }

  /** Stores a value given as consecutive parts (an encoded value's head and body). */
  put(key: Buffer, lsn: number, parts: readonly Buffer[], willInit: boolean): void {
    if (this.end !== null) throw new Error('write to a frozen in-memory layer')
    const k = keyStr(key)
    let v = this.index.get(k)
    if (!v) {
      v = []
      this.index.set(k, v)
    } else if (v[v.length - 3] >= lsn) {
      throw new Error(`key ${key.toString('hex')} already has a value at or after LSN ${lsn}`)
    }
    let off = -1
    let len = 0
    for (const p of parts) {
      const at = this.file.append(p)
      if (off < 0) off = at
      len += p.length
    }
    v.push(lsn, off, len * 2 + (willInit ? 1 : 0))
    if (lsn > this.maxLsn) this.maxLsn = lsn
    this.refs++
  }

  freeze(end: number): void {
    if (end <= this.maxLsn) throw new Error(`freeze at ${end} would cut off values written at ${this.maxLsn}`)
    this.end = end
  }

  /**
   * Versions of `key` with lsn in [floor, ceil), newest first, until the visitor returns true; values in
   * their stored form, as layer files hand them out.
   */
  visit(key: Buffer, floor: number, ceil: number, visitor: LayerVisitor): void {
    const v = this.index.get(keyStr(key))
    if (!v) return
    for (let i = v.length - 3; i >= 0; i -= 3) {
      const lsn = v[i]
      if (lsn >= ceil) continue
      if (lsn < floor) return
      const packed = v[i + 2]
      const { bytes, image } = storedForm(this.file.read(v[i + 1], Math.floor(packed / 2)))
      if (visitor(lsn, bytes, packed % 2 === 1, image)) return
    }
  }

  /** Keys (as keyStr strings) with a version at or below `lsn`, in key order, optionally within [start, end). */
  keyStrs(lsn: number, start?: Buffer, end?: Buffer): string[] {
    const lo = start ? keyStr(start) : null
    const hi = end ? keyStr(end) : null
    const out: string[] = []
    for (const [k, v] of this.index) {
      if ((lo !== null && k < lo) || (hi !== null && k >= hi) || v[0] > lsn) continue
      out.push(k)
    }
    return out.sort()
  }

  /** Every entry in (key, lsn) order, in stored form, for writing the layer out. */
  *entries(): Generator<LayerEntry> {
    for (const k of [...this.index.keys()].sort()) {
      const key = keyFromStr(k)
      const v = this.index.get(k)!
      for (let i = 0; i < v.length; i += 3) {
        const packed = v[i + 2]
        // Flushing reads every value once, in key order: past the page cache, so readers keep theirs.
        const { bytes, image } = storedForm(this.file.readUncached(v[i + 1], Math.floor(packed / 2)))
        yield { key, lsn: v[i], value: bytes, willInit: packed % 2 === 1, image }
      }
    }
  }

  /** The file holding the values, written out completely (for a flush in another thread). */
  get filePath(): string {
    this.file.writeTail()
    return this.file.path
  }

  /** The index in key order, as typed arrays a worker thread can take. */
  snapshotIndex(): { keys: Uint8Array; counts: Uint32Array; versions: Float64Array } {
    const sorted = [...this.index.keys()].sort()
    const keys = new Uint8Array(sorted.length * 18)
    const counts = new Uint32Array(sorted.length)
    let total = 0
    for (const k of sorted) total += this.index.get(k)!.length
    const versions = new Float64Array(total)
    let v = 0
    sorted.forEach((k, i) => {
      keys.set(keyFromStr(k), i * 18)
      const vs = this.index.get(k)!
      counts[i] = vs.length / 3
      versions.set(vs, v)
      v += vs.length
    })
    return { keys, counts, versions }
  }

  /** Deletes the ephemeral file; the layer must not be read afterwards. */
  drop(): void {
    this.file.remove()
  }
}
