/** Tenant and timeline ids: 16 random bytes, shown as 32 lower-case hex digits (as Neon does). */

import { randomBytes } from 'node:crypto'
import { type ErrorKind, ZenithError } from './errors.js'

export type TenantId = string
export type TimelineId = string

export class IdError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'IdError'
}

export function generateId(): string {
  return randomBytes(16).toString('hex')
}

export function parseId(text: string, what: 'tenant' | 'timeline'): string {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) {
    throw new IdError(`invalid ${what} id "${text}": expected 32 hex digits (16 bytes)`)
  }
  return text.toLowerCase()
}

export function idBytes(id: string): Buffer {
  return Buffer.from(id, 'hex')
}

export function idFromBytes(b: Buffer): string {
  return b.toString('hex')
}
