/**
 * CRC-32C (Castagnoli), as used by WAL records, pg_control and relmapper files.
 *
 * @node-rs/crc32 uses the SSE4.2 / ARMv8 CRC instructions; bench/wal-decode compares it with a
 * slicing-by-8 table implementation in TypeScript, which it outruns by an order of magnitude on 8 KiB images.
 * `init` continues a previous CRC, so crc32c(b, crc32c(a)) === crc32c(a ‖ b).
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32'

export function crc32c(data: Uint8Array, init = 0): number {
  return nativeCrc32c(data as Buffer, init) >>> 0
}
