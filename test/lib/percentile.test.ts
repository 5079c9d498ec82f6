import { describe, expect, it } from 'vitest'
import { percentile } from '../../src/lib/percentile.js'

describe('percentile', () => {
  it('is the nearest rank: a value that was observed', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentile(xs, 50)).toBe(50)
    expect(percentile(xs, 99)).toBe(99)
    expect(percentile(xs, 100)).toBe(100)
    expect(percentile([3, 1, 2], 50)).toBe(2)
    expect(percentile([7], 99)).toBe(7)
  })

  it('of nothing is 0, and sorts numbers as numbers', () => {
    expect(percentile([], 99)).toBe(0)
    expect(percentile([10, 9, 100], 34)).toBe(10)
  })
})
