/**
 * The historic (on-disk) layers of one timeline and the search the read path makes over them: which
 * layer holds the newest data for a key below an LSN.
 */
import { rmSync } from 'node:fs'
import { EngineStateError, LayerNotLocalError } from './errors.js'
import { keyStr } from './key.js'
import { LayerFileReader } from './layer-file.js'
import { isL0Desc, type LayerDesc } from './layer-name.js'
import type { PageCache } from './page-cache.js'

/** Bytes on disk of the layers together. */
export const totalSize = (layers: readonly HistoricLayer[]): number =>
  layers.reduce((n, l) => n + l.fileSize, 0)

/** Fetches a layer's object from remote storage into its path, durably (layer-download.ts). */
export type LayerFetch = (layer: HistoricLayer) => Promise<void>

export class HistoricLayer {
  private opened: LayerFileReader | null = null
  private downloading: Promise<void> | null = null
  private removed = false
  readonly keyStartStr: string
  readonly keyEndStr: string

  /**
   * A layer of a timeline. `fetch` (with remote storage) gets its object when its file is not local:
   * `local` false makes it a remote-only layer, whose reads throw LayerNotLocalError until download().
   */
  constructor(
    readonly desc: LayerDesc,
    readonly path: string,
    readonly fileSize: number,
    private readonly cache: PageCache,
    private readonly fetch: LayerFetch | null = null,
    private local = true,
  ) {
    this.keyStartStr = keyStr(desc.keyStart)
    this.keyEndStr = keyStr(desc.keyEnd)
  }

  get isImage(): boolean {
    return this.desc.kind === 'image'
  }

  get isL0(): boolean {
    return isL0Desc(this.desc)
  }

  /** Whether the layer's file is on local disk (else it is only in remote storage). */
  get isLocal(): boolean {
    return this.local
  }

  reader(): LayerFileReader {
    if (!this.local) throw new LayerNotLocalError(this)
    if (!this.opened) this.opened = LayerFileReader.open(this.path, this.cache)
    return this.opened
  }

  /**
   * Makes the layer local: fetches its object and opens it (the header check runs). One download at a
   * time: concurrent callers share it. A file that fails the check is removed again.
   */
  download(): Promise<void> {
    if (this.local) return Promise.resolve()
    if (!this.fetch) {
      throw new EngineStateError(`layer ${this.path} is not local and its timeline has no remote storage`, {
        kind: 'bug',
      })
    }
    this.downloading ??= this.fetch(this)
      .then(() => {
        if (this.removed) {
          // Compaction or GC dropped the layer meanwhile: its file must not outlive it.
          rmSync(this.path, { force: true })
          return
        }
        this.local = true
        try {
          this.reader()
        } catch (err) {
          this.local = false
          rmSync(this.path, { force: true })
          throw err
        }
      })
      .finally(() => {
        this.downloading = null
      })
    return this.downloading
  }

  close(): void {
    this.opened?.close()
    this.opened = null
  }

  /** The layer left its timeline (compaction, GC): a download still running removes what it fetched. */
  /** Compaction or GC replaced it: its reader is closed. */
  get isRemoved(): boolean {
    return this.removed
  }

  markRemoved(): void {
    this.removed = true
    this.close()
  }
}

export class LayerMap {
  private list: HistoricLayer[] = []

  get layers(): readonly HistoricLayer[] {
    return this.list
  }

  /** Adds and removes layers in one step, so a read never sees half of a compaction. */
  replace(remove: readonly HistoricLayer[], add: readonly HistoricLayer[]): void {
    const gone = new Set(remove)
    this.list = this.list.filter((l) => !gone.has(l)).concat(add)
    // Newest first: reads scan from the top of the stack down.
    this.list.sort((a, b) => b.desc.lsnEnd - a.desc.lsnEnd || b.desc.lsnStart - a.desc.lsnStart)
  }

  l0(): HistoricLayer[] {
    return this.list.filter((l) => l.isL0).sort((a, b) => a.desc.lsnStart - b.desc.lsnStart)
  }

  /**
   * The layer to read next for `key` below `cont` (exclusive), and how far down to read it: the newest
   * delta, unless an image at least as new exists, in which case the image ends the search.
   */
  search(key: Buffer, cont: number): { layer: HistoricLayer; floor: number } | null {
    const k = keyStr(key)
    let delta: HistoricLayer | null = null
    let deltaTop = -1
    let image: HistoricLayer | null = null
    for (const l of this.list) {
      const d = l.desc
      if (d.lsnStart >= cont || k < l.keyStartStr || k >= l.keyEndStr) continue
      if (l.isImage) {
        if (!image || d.lsnStart > image.desc.lsnStart) image = l
      } else {
        const top = Math.min(d.lsnEnd, cont)
        if (top > deltaTop) {
          delta = l
          deltaTop = top
        }
      }
    }
    if (image && (!delta || image.desc.lsnStart + 1 >= deltaTop))
      return { layer: image, floor: image.desc.lsnStart }
    if (!delta) return null
    return { layer: delta, floor: Math.max(delta.desc.lsnStart, image ? image.desc.lsnStart + 1 : 0) }
  }
}
