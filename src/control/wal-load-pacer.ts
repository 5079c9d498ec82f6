/**
 * Paces the transactions of `zenith wal load` to a target: a token bucket that every client takes one
 * token from per transaction. For a transaction rate the bucket fills at that rate. For a WAL rate it fills
 * at the rate of transactions that would write the target, from the WAL written per transaction so far,
 * plus a correction that closes the gap between the WAL written and rate × time within a few seconds —
 * so the run's total converges on the target even when the size of a transaction drifts (checkpoints'
 * page images, a table outgrowing the cache).
 *
 * The bucket holds at most a fifth of a second of tokens: clients that fall behind do not burst later, so
 * a target the compute cannot reach shows as a lower achieved rate instead of waves of catch-up.
 */

export type LoadTarget = { kind: 'tps'; tps: number } | { kind: 'wal'; bytesPerSec: number }

/** How fast a WAL deficit (or surplus) is made good. */
const CORRECTION_S = 2
/** Until a few transactions have committed, their WAL is guessed (a pgbench transaction is ~36 KB under
 * wal_consistency_checking = all). */
const GUESSED_TX_BYTES = 32 * 1024
const BURST_S = 0.2

export class Pacer {
  private tokens = 0
  private lastFill: number
  private txRate: number
  private readonly startMs: number

  constructor(
    private readonly target: LoadTarget,
    private readonly clients: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.startMs = this.lastFill = now()
    this.txRate = target.kind === 'tps' ? target.tps : target.bytesPerSec / GUESSED_TX_BYTES
    // Every client may start at once: a transaction each.
    this.tokens = Math.min(clients, this.capacity())
  }

  /**
   * For a WAL target: the WAL written and the transactions committed since the start, as last measured.
   * A transaction target ignores it.
   */
  observe(walBytes: number, committed: number): void {
    if (this.target.kind !== 'wal') return
    this.fill()
    const perTx = committed >= this.clients ? walBytes / committed : GUESSED_TX_BYTES
    const elapsedS = (this.now() - this.startMs) / 1000
    const deficit = this.target.bytesPerSec * elapsedS - walBytes
    const bytesPerSec = Math.max(0, this.target.bytesPerSec + deficit / CORRECTION_S)
    this.txRate = bytesPerSec / Math.max(1, perTx)
  }

  /** Takes a token, waiting for one; resolves false without one when `stopped()` becomes true. */
  async take(stopped: () => boolean): Promise<boolean> {
    for (;;) {
      if (stopped()) return false
      this.fill()
      if (this.tokens >= 1) {
        this.tokens -= 1
        return true
      }
      // Sleep until a token is due, but wake often enough to see a new rate or the end.
      const dueMs = this.txRate > 0 ? ((1 - this.tokens) / this.txRate) * 1000 : 50
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, dueMs))))
    }
  }

  private capacity(): number {
    return Math.max(1, this.txRate * BURST_S)
  }

  private fill(): void {
    const t = this.now()
    this.tokens = Math.min(this.capacity(), this.tokens + ((t - this.lastFill) / 1000) * this.txRate)
    this.lastFill = t
  }
}
