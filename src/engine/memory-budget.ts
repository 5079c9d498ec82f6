/**
 * One budget for the open in-memory layers of every timeline. When a write takes the total above it, a
 * GClock sweep picks the victim: each open layer's reference count (bumped by its writes) is cleared as
 * the hand passes, and the first layer found without recent writes is frozen and flushed. Busy layers
 * thus keep filling up to checkpoint_distance while idle ones make room.
 */
import type { Timeline } from './timeline.js'

export const DEFAULT_MEMORY_BUDGET = 128 * 1024 * 1024

export class MemoryBudget {
  private ring: Timeline[] = []
  private hand = 0
  /** How many layers the budget has frozen: for metrics and tests. */
  evictions = 0

  constructor(public budgetBytes: number = DEFAULT_MEMORY_BUDGET) {}

  add(tl: Timeline): void {
    this.ring.push(tl)
  }

  remove(tl: Timeline): void {
    this.ring = this.ring.filter((t) => t !== tl)
    this.hand = 0
  }

  used(): number {
    let n = 0
    for (const tl of this.ring) n += tl.openLayerBytes
    return n
  }

  /** Freezes victims until the open layers fit the budget again. */
  enforce(): void {
    let used = this.used()
    // Two turns of the hand clear every reference count once, so a victim is always found.
    let steps = 2 * this.ring.length + 1
    while (used > this.budgetBytes && steps-- > 0 && this.ring.length > 0) {
      this.hand %= this.ring.length
      const tl = this.ring[this.hand]
      this.hand++
      const layer = tl.openLayer
      if (!layer || layer.size === 0) continue
      if (layer.refs > 0) {
        layer.refs = 0
        continue
      }
      const bytes = layer.size
      if (tl.freezeOpenLayer()) {
        this.evictions++
        used -= bytes
      }
    }
  }
}
