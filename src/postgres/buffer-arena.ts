/**
 * Buffers carved out of 256 KiB slabs. A Buffer of its own of 8 KiB or more costs microseconds (fresh
 * memory, external-memory accounting) — as much as decoding a record or serving a cached page — while a
 * slice of a slab costs almost nothing. Slabs are never reused: each slice owns its bytes and is safe to
 * keep, and a kept slice pins its slab until it is dropped, as Node's own pool does for small Buffers.
 */
const SLAB_SIZE = 256 * 1024
const MAX_SLICE = 64 * 1024

let slab = Buffer.allocUnsafeSlow(SLAB_SIZE)
let used = 0

/** An uninitialised Buffer of `len` bytes. */
export function arenaBuffer(len: number): Buffer {
  if (len > MAX_SLICE) return Buffer.allocUnsafeSlow(len)
  if (used + len > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE)
    used = 0
  }
  const b = slab.subarray(used, used + len)
  // Keep slices 8-aligned, so typed-array views over them stay possible.
  used += (len + 7) & ~7
  return b
}

/** Buffer.concat into an arena buffer. */
export function arenaConcat(pieces: readonly Buffer[], total: number): Buffer {
  const out = arenaBuffer(total)
  let off = 0
  for (const p of pieces) {
    p.copy(out, off)
    off += p.length
  }
  return out
}
