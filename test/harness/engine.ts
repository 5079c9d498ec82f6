/**
 * Redo functions for engine tests, standing in for Postgres' record kinds: APPEND adds its bytes to the
 * page (from nothing when willInit), SET_BYTE writes one byte at a u16 offset.
 */
import { RedoRegistry } from '../../src/engine/value.js'

export const APPEND = 1
export const SET_BYTE = 2

export function testRedo(): RedoRegistry {
  return new RedoRegistry()
    .register(APPEND, (_key, page, rec) => Buffer.concat([page ?? Buffer.alloc(0), rec]))
    .register(SET_BYTE, (_key, page, rec) => {
      const out = Buffer.from(page ?? Buffer.alloc(0))
      const at = rec.readUInt16BE(0)
      if (at < out.length) out[at] = rec[2]
      return out
    })
}
