/**
 * Deterministic pseudo-random numbers (xorshift32) for tests: a failing case replays from its seed.
 * `rng(seed)()` is a float in [0, 1); `randomInt(seed)(n)` an integer in [0, n).
 */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x1_0000_0000
  }
}

export function randomInt(seed: number): (n: number) => number {
  const next = rng(seed)
  return (n) => Math.floor(next() * n)
}
