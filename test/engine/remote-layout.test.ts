import { describe, expect, it } from 'vitest'
import {
  formatGeneration,
  indexKey,
  layerKey,
  newestIndexAtOrBelow,
  parseRemoteKey,
  timelinePrefix,
} from '../../src/engine/remote-layout.js'

const T = '0123456789abcdef0123456789abcdef'
const TL = 'fedcba9876543210fedcba9876543210'
const LAYER = `${'00'.repeat(18)}-${'FF'.repeat(18)}__0000000001696070-00000000016960E9`

describe('remote layout', () => {
  it('names layers and indexes with the generation as 8 hex digits, and parses them back', () => {
    expect(layerKey(T, TL, LAYER, 1)).toBe(`tenants/${T}/timelines/${TL}/${LAYER}-00000001`)
    expect(indexKey(T, TL, 0xabc)).toBe(`tenants/${T}/timelines/${TL}/index_part.json-00000abc`)
    expect(layerKey(T, TL, LAYER, 1).startsWith(timelinePrefix(T, TL))).toBe(true)
    expect(parseRemoteKey(layerKey(T, TL, LAYER, 0xffffffff))).toEqual({
      kind: 'layer',
      tenantId: T,
      timelineId: TL,
      layer: LAYER,
      generation: 0xffffffff,
    })
    expect(parseRemoteKey(indexKey(T, TL, 7))).toEqual({
      kind: 'index',
      tenantId: T,
      timelineId: TL,
      generation: 7,
    })
  })

  it('refuses generations outside u32 and keys outside the layout', () => {
    expect(() => formatGeneration(2 ** 32)).toThrow('4294967296 is not a generation')
    expect(() => formatGeneration(-1)).toThrow('is not a generation')
    expect(() => formatGeneration(1.5)).toThrow('is not a generation')
    for (const key of [
      `tenants/${T}/timelines/${TL}/index_part.json`, // no generation
      `tenants/${T}/timelines/${TL}/index_part.json-0000000G`,
      `tenants/${T}/timelines/${TL}/index_part.json-1`,
      `tenants/${T}/timelines/${TL}/something-00000001`,
      `tenants/${T}/timelines/${TL}/${LAYER.toLowerCase()}-00000001`,
      `tenants/${T}/${TL}/${LAYER}-00000001`,
    ])
      expect(parseRemoteKey(key), key).toBeNull()
  })

  it('loads the newest index at or below its own generation, never a newer one', () => {
    const keys = [3, 5, 9].map((g) => indexKey(T, TL, g))
    keys.push(layerKey(T, TL, LAYER, 6))
    expect(newestIndexAtOrBelow(keys, 5)).toEqual({ key: indexKey(T, TL, 5), generation: 5 })
    expect(newestIndexAtOrBelow(keys, 8)).toEqual({ key: indexKey(T, TL, 5), generation: 5 })
    expect(newestIndexAtOrBelow(keys, 100)).toEqual({ key: indexKey(T, TL, 9), generation: 9 })
    expect(newestIndexAtOrBelow(keys, 2)).toBeNull()
    expect(newestIndexAtOrBelow([], 1)).toBeNull()
  })
})
