/**
 * How many seconds a consumer of WAL is behind, from where its producer's end was over time. A consumer
 * hears the producer's end with the WAL itself (the walEnd of every XLogData) and notes it here with its
 * own clock; the lag of a position it has reached is then how long ago the producer was there, so no
 * two clocks are compared. A consumer that has stopped keeps falling behind by the second,
 * which is what a person watching lag wants to see.
 *
 * Samples are few: one per `minIntervalMs` at most (a later end in the same interval raises the last
 * sample, so a lag is overstated by less than that), and when `capacity` is reached every other one is
 * dropped, so a long history stays, coarser — older samples are the sparser, and positions between them
 * are interpolated.
 */

export interface LsnClockOptions {
  minIntervalMs?: number
  capacity?: number
}

export class LsnClock {
  private readonly times: number[] = []
  private readonly lsns: number[] = []
  private readonly minIntervalMs: number
  private readonly capacity: number

  constructor(opts: LsnClockOptions = {}) {
    this.minIntervalMs = opts.minIntervalMs ?? 100
    this.capacity = Math.max(4, opts.capacity ?? 1024)
  }

  /** The newest end heard; null before the first. */
  get end(): number | null {
    return this.lsns.length === 0 ? null : this.lsns[this.lsns.length - 1]
  }

  /** The producer's end was `lsn` at `atMs` (an end that went back, after a failover, starts afresh). */
  note(lsn: number, atMs: number = Date.now()): void {
    const n = this.lsns.length
    if (n > 0 && lsn < this.lsns[n - 1]) {
      this.times.length = 0
      this.lsns.length = 0
    } else if (n > 0 && lsn === this.lsns[n - 1]) {
      return
    } else if (n > 0 && atMs - this.times[n - 1] < this.minIntervalMs) {
      this.lsns[n - 1] = lsn
      return
    }
    if (this.lsns.length >= this.capacity) this.thin()
    this.times.push(atMs)
    this.lsns.push(lsn)
  }

  /**
   * How many seconds ago the producer's end was `lsn` — the consumer at `lsn` has what the producer had
   * then. Between two samples the time is interpolated by LSN; 0 at the newest end or beyond, null when
   * no end has been heard, and at least the age of the first sample for a position older than it. To the
   * millisecond, the resolution of the clock it is measured with.
   */
  lagSeconds(lsn: number, nowMs: number = Date.now()): number | null {
    const n = this.lsns.length
    if (n === 0) return null
    if (lsn >= this.lsns[n - 1]) return 0
    if (lsn < this.lsns[0]) return secondsSince(this.times[0], nowMs)
    // The last sample at or below `lsn`: binary search over the rising LSNs.
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.lsns[mid] <= lsn) lo = mid
      else hi = mid - 1
    }
    const [t0, t1, l0, l1] = [this.times[lo], this.times[lo + 1], this.lsns[lo], this.lsns[lo + 1]]
    const at = t0 + ((t1 - t0) * (lsn - l0)) / (l1 - l0)
    return secondsSince(at, nowMs)
  }

  private thin(): void {
    // Keep the first, so the history keeps its length, and the newest: every lag is measured against it.
    const n = this.lsns.length
    let w = 0
    for (let r = 0; r < n; r++) {
      if (r % 2 !== 0 && r !== n - 1) continue
      this.times[w] = this.times[r]
      this.lsns[w] = this.lsns[r]
      w++
    }
    this.times.length = w
    this.lsns.length = w
  }
}

const secondsSince = (atMs: number, nowMs: number) => Math.max(0, Math.round(nowMs - atMs)) / 1000
