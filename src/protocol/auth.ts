/**
 * Password authentication of the client side: libpq's MD5 response and a SCRAM-SHA-256 exchange
 * (RFC 5802, RFC 7677) without channel binding.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { PgClientError } from './errors.js'

/** libpq's MD5 response: "md5" + md5hex(md5hex(password + user) + salt). */
export function md5PasswordResponse(password: string, user: string, salt: Buffer): string {
  const inner = createHash('md5').update(password).update(user).digest('hex')
  return `md5${createHash('md5').update(inner).update(salt).digest('hex')}`
}

/**
 * Characters SASLprep (RFC 4013) maps to nothing, and non-ASCII spaces it maps to a space. We apply those
 * mappings and NFKC but skip its prohibited-output checks; Postgres uses such passwords unprepared, so they
 * would not match either way.
 */
const SASLPREP_NOTHING = new Set([
  0xad,
  0x34f,
  0x1806,
  0x180b,
  0x180c,
  0x180d,
  0x200b,
  0x200c,
  0x200d,
  0x2060,
  0xfeff,
  ...Array.from({ length: 16 }, (_, i) => 0xfe00 + i),
])
const SASLPREP_SPACE = new Set([
  0xa0,
  0x1680,
  0x202f,
  0x205f,
  0x3000,
  ...Array.from({ length: 11 }, (_, i) => 0x2000 + i),
])

function saslPrep(password: string): string {
  let mapped = ''
  let ascii = true
  for (const ch of password) {
    const cp = ch.codePointAt(0)!
    if (cp < 0x80) mapped += ch
    else {
      ascii = false
      if (SASLPREP_SPACE.has(cp)) mapped += ' '
      else if (!SASLPREP_NOTHING.has(cp)) mapped += ch
    }
  }
  return ascii ? password : mapped.normalize('NFKC')
}

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding. Like libpq we send an
 * empty user name: Postgres takes the user from the startup packet.
 */
export class ScramSession {
  private readonly clientNonce: string
  private readonly clientFirstBare: string
  private serverSignature: Buffer | null = null

  constructor(
    private readonly password: string,
    opts: { nonce?: string; user?: string } = {},
  ) {
    this.clientNonce = opts.nonce ?? randomBytes(18).toString('base64')
    const user = (opts.user ?? '').replaceAll('=', '=3D').replaceAll(',', '=2C')
    this.clientFirstBare = `n=${user},r=${this.clientNonce}`
  }

  /** GS2 header "n,," (no channel binding) + client-first-message-bare. */
  clientFirstMessage(): string {
    return `n,,${this.clientFirstBare}`
  }

  clientFinalMessage(serverFirst: string): string {
    const attrs = scramAttributes(serverFirst)
    const nonce = attrs.get('r')
    const salt = attrs.get('s')
    const iterations = Number(attrs.get('i'))
    if (
      nonce === undefined ||
      !nonce.startsWith(this.clientNonce) ||
      nonce.length === this.clientNonce.length
    ) {
      throw new PgClientError('SCRAM: the server nonce does not extend ours')
    }
    if (salt === undefined || !Number.isSafeInteger(iterations) || iterations < 1) {
      throw new PgClientError(`SCRAM: malformed server-first-message ${JSON.stringify(serverFirst)}`)
    }
    const saltedPassword = pbkdf2Sync(
      saslPrep(this.password),
      Buffer.from(salt, 'base64'),
      iterations,
      32,
      'sha256',
    )
    const clientKey = hmac(saltedPassword, 'Client Key')
    const storedKey = createHash('sha256').update(clientKey).digest()
    // "biws" is base64("n,,"): the GS2 header echoed back.
    const clientFinalWithoutProof = `c=biws,r=${nonce}`
    const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`
    const clientSignature = hmac(storedKey, authMessage)
    const proof = Buffer.alloc(clientKey.length)
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ clientSignature[i]
    this.serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage)
    return `${clientFinalWithoutProof},p=${proof.toString('base64')}`
  }

  /** Checks the server's proof that it knows the password too. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = scramAttributes(serverFinal)
    const failure = attrs.get('e')
    if (failure !== undefined) throw new PgClientError(`SCRAM: the server reported ${failure}`)
    const v = attrs.get('v')
    if (this.serverSignature === null || v === undefined) {
      throw new PgClientError(`SCRAM: unexpected server-final-message ${JSON.stringify(serverFinal)}`)
    }
    const got = Buffer.from(v, 'base64')
    if (got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) {
      throw new PgClientError('SCRAM: the server signature is wrong; the server does not know the password')
    }
  }
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest()
}

function scramAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>()
  for (const part of message.split(',')) {
    const eq = part.indexOf('=')
    if (eq === 1) attrs.set(part[0], part.slice(2))
  }
  return attrs
}
