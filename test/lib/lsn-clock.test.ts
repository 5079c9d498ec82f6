import { describe, expect, it } from 'vitest'
import { LsnClock } from '../../src/lib/lsn-clock.js'

describe('LsnClock', () => {
  it('knows nothing before the first end is heard', () => {
    const c = new LsnClock()
    expect(c.end).toBeNull()
    expect(c.lagSeconds(100, 0)).toBeNull()
  })

  it('gives how long ago the producer was at a position, interpolated between samples', () => {
    const c = new LsnClock({ minIntervalMs: 0 })
    c.note(1000, 0)
    c.note(2000, 1000)
    c.note(3000, 2000)
    expect(c.lagSeconds(3000, 5000)).toBe(0)
    expect(c.lagSeconds(4000, 5000)).toBe(0)
    expect(c.lagSeconds(2000, 5000)).toBe(4)
    expect(c.lagSeconds(2500, 5000)).toBe(3.5)
    expect(c.lagSeconds(1000, 5000)).toBe(5)
    // Older than the whole history: at least as old as the first sample.
    expect(c.lagSeconds(10, 5000)).toBe(5)
  })

  it('a stopped consumer falls behind by the second', () => {
    const c = new LsnClock({ minIntervalMs: 0 })
    c.note(1000, 0)
    c.note(2000, 1000)
    expect(c.lagSeconds(2000, 11_000)).toBe(0)
    expect(c.lagSeconds(1000, 1000)).toBe(1)
    expect(c.lagSeconds(1000, 11_000)).toBe(11)
  })

  it('merges ends heard within the interval into one sample, overstating by less than it', () => {
    const c = new LsnClock({ minIntervalMs: 100 })
    c.note(1000, 0)
    c.note(1500, 50)
    c.note(2000, 120)
    expect(c.end).toBe(2000)
    // The end was 1500 at 50 ms; merged into the first sample, that reads as 0–120 ms by interpolation.
    expect(c.lagSeconds(1500, 1000)).toBeCloseTo(1.0)
    expect(c.lagSeconds(2000, 1000)).toBe(0)
  })

  it('starts afresh when the end goes back', () => {
    const c = new LsnClock({ minIntervalMs: 0 })
    c.note(5000, 0)
    c.note(3000, 1000)
    expect(c.end).toBe(3000)
    expect(c.lagSeconds(2000, 2000)).toBe(1)
  })

  it('keeps a long history within its capacity, coarser, and the newest end exact', () => {
    const c = new LsnClock({ minIntervalMs: 0, capacity: 16 })
    for (let i = 1; i <= 1000; i++) c.note(i * 10, i * 1000)
    expect(c.end).toBe(10_000)
    expect(c.lagSeconds(10_000, 1_000_000)).toBe(0)
    // The end was 5000 at 500 s; a steady producer interpolates exactly across the thinned samples.
    expect(c.lagSeconds(5000, 1_000_000)).toBeCloseTo(500)
    expect(c.lagSeconds(9995, 1_000_000)).toBeCloseTo(0.5)
  })
})
