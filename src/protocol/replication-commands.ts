/**
 * The walsender's side of a physical replication connection (`replication=true` at startup): the commands
 * a receiver sends as simple queries, and the results Postgres 15 answers them with.
 *
 * A session as pg_receivewal and Postgres' own walreceiver run it:
 *
 *     SHOW data_directory_mode, SHOW wal_segment_size    (pg_receivewal only)
 *     IDENTIFY_SYSTEM                                    one row: systemid, timeline, xlogpos, dbname
 *     TIMELINE_HISTORY n                                 only when the receiver is on a timeline above 1
 *     START_REPLICATION [SLOT s] [PHYSICAL] X/X [TIMELINE n]
 *         CopyBothResponse, then XLogData and keepalives one way, status updates the other, until one side
 *         sends CopyDone and the other answers with its own; then CommandComplete START_STREAMING and
 *         CommandComplete START_REPLICATION (Postgres sends both)
 *
 * Every command's result ends with CommandComplete, and ReadyForQuery follows each command or error.
 *
 * Postgres 15 recognises the keywords in capitals only and takes anything else for SQL; we accept any case,
 * which no stock client can notice. Identifiers follow SQL: unquoted ones are folded to lower case.
 */
import { formatLsn, type Lsn, parseLsn } from '../postgres/lsn.js'
import { ReplicationCommandError } from './errors.js'
import { type FieldDescription, INT4_OID, TEXT_OID } from './messages.js'
import type { IdentifySystem } from './replication.js'
import type { PgServerConnection, StartupParams } from './server.js'

/** IDENTIFY_SYSTEM's columns, typed as Postgres 15 sends them (16 made timeline int8). */
export const IDENTIFY_SYSTEM_FIELDS: readonly FieldDescription[] = [
  { name: 'systemid', typeOid: TEXT_OID },
  { name: 'timeline', typeOid: INT4_OID, typeSize: 4 },
  { name: 'xlogpos', typeOid: TEXT_OID },
  { name: 'dbname', typeOid: TEXT_OID },
]

/** CommandComplete tags of the commands we answer. */
export const COMMAND_TAGS = {
  IDENTIFY_SYSTEM: 'IDENTIFY_SYSTEM',
  SHOW: 'SHOW',
  /** After a replication stream ends: first the inner tag, then the command's own. */
  START_STREAMING: 'START_STREAMING',
  START_REPLICATION: 'START_REPLICATION',
} as const

/** SQLSTATEs of the refusals, as Postgres' walsender sends them. */
const SQLSTATE_SYNTAX_ERROR = '42601'
const SQLSTATE_FEATURE_NOT_SUPPORTED = '0A000'
const SQLSTATE_INVALID_PARAMETER_VALUE = '22023'

/** TimeLineID is a uint32. */
const MAX_TIMELINE = 0xffff_ffff

export type ReplicationCommand =
  | { kind: 'identifySystem' }
  /** `name` folded to lower case, as GUC names are case-insensitive. */
  | { kind: 'show'; name: string }
  | { kind: 'timelineHistory'; timeline: number }
  | {
      kind: 'startReplication'
      slot: string | null
      start: Lsn
      /** Null when the receiver names none, which means the server's current timeline. */
      timeline: number | null
    }

/** Commands Postgres 15 knows and we do not serve: refused as unsupported rather than taken for SQL. */
const UNSUPPORTED_COMMANDS = new Set([
  'BASE_BACKUP',
  'CREATE_REPLICATION_SLOT',
  'DROP_REPLICATION_SLOT',
  'READ_REPLICATION_SLOT',
])

const SUPPORTED = 'IDENTIFY_SYSTEM, SHOW, TIMELINE_HISTORY and START_REPLICATION … PHYSICAL'

type TokenType = 'word' | 'quoted' | 'lsn' | 'number' | 'char'

interface Token {
  type: TokenType
  /** A word as written, a quoted identifier unescaped, other tokens as written. */
  text: string
}

// Alternatives in order: LSN before number and word, since "0/16B3748" and "FF/0" start like either. An
// LSN token may hold any letters, so that "0/XYZ" is reported whole, as a bad position.
const TOKEN_RE =
  /\s*(?:"((?:[^"]|"")*)"|([0-9A-Za-z]+\/[0-9A-Za-z]+)|(\d+)(?![A-Za-z_])|([A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*)|(\S))/y

function tokenize(sql: string): Token[] {
  const tokens: Token[] = []
  TOKEN_RE.lastIndex = 0
  for (;;) {
    const m = TOKEN_RE.exec(sql)
    // The last alternative takes any other character, so only trailing whitespace stops the pattern.
    if (m === null) return tokens
    if (m[1] !== undefined) tokens.push({ type: 'quoted', text: m[1].replaceAll('""', '"') })
    else if (m[2] !== undefined) tokens.push({ type: 'lsn', text: m[2] })
    else if (m[3] !== undefined) tokens.push({ type: 'number', text: m[3] })
    else if (m[4] !== undefined) tokens.push({ type: 'word', text: m[4] })
    else tokens.push({ type: 'char', text: m[5] })
  }
}

function describe(token: Token | undefined): string {
  if (token === undefined) return 'the end of the command'
  return token.type === 'quoted' ? `"${token.text.replaceAll('"', '""')}"` : JSON.stringify(token.text)
}

class Parser {
  private pos = 0

  constructor(
    private readonly tokens: Token[],
    private readonly command: string,
  ) {}

  peek(): Token | undefined {
    return this.tokens[this.pos]
  }

  /** Consumes the keyword when it comes next. */
  keyword(kw: string): boolean {
    const t = this.peek()
    if (t?.type !== 'word' || t.text.toUpperCase() !== kw) return false
    this.pos++
    return true
  }

  fail(expected: string): never {
    throw new ReplicationCommandError(
      `syntax error in ${this.command}: expected ${expected}, got ${describe(this.peek())}`,
      SQLSTATE_SYNTAX_ERROR,
    )
  }

  /** A slot name, or with `dotted` a parameter name, which may be qualified (neon.tenant_id). */
  identifier(what: string, opts: { dotted?: boolean } = {}): string {
    const t = this.peek()
    if (t?.type === 'word' && (opts.dotted || !t.text.includes('.'))) {
      this.pos++
      return t.text.toLowerCase()
    }
    if (t?.type === 'quoted' && t.text !== '') {
      this.pos++
      return t.text
    }
    return this.fail(what)
  }

  lsn(what: string): Lsn {
    const t = this.peek()
    let lsn: Lsn | null = null
    try {
      if (t?.type === 'lsn') lsn = parseLsn(t.text)
    } catch {
      // Not hex, or above 2^53: a syntax error like any other wrong token.
    }
    if (lsn === null) return this.fail(what)
    this.pos++
    return lsn
  }

  timeline(): number {
    const t = this.peek()
    if (t?.type !== 'number') return this.fail('a timeline number')
    this.pos++
    const tli = Number(t.text)
    if (tli === 0 || tli > MAX_TIMELINE) {
      throw new ReplicationCommandError(`invalid timeline ${t.text}`, SQLSTATE_SYNTAX_ERROR)
    }
    return tli
  }

  end(): void {
    // Postgres' grammar takes one optional semicolon after the command.
    if (this.peek()?.type === 'char' && this.peek()?.text === ';') this.pos++
    if (this.pos < this.tokens.length) this.fail('the end of the command')
  }
}

/**
 * Parses one command of a physical replication connection. Throws ReplicationCommandError, with the SQLSTATE
 * Postgres would answer, for a syntax error (42601), for SQL and for the commands we do not serve (0A000).
 */
export function parseReplicationCommand(sql: string): ReplicationCommand {
  const tokens = tokenize(sql)
  const first = tokens[0]
  const keyword = first?.type === 'word' ? first.text.toUpperCase() : ''
  const p = new Parser(tokens, keyword)
  p.keyword(keyword)
  let command: ReplicationCommand
  switch (keyword) {
    case 'IDENTIFY_SYSTEM':
      command = { kind: 'identifySystem' }
      break
    case 'SHOW':
      command = { kind: 'show', name: p.identifier('a parameter name', { dotted: true }) }
      break
    case 'TIMELINE_HISTORY':
      command = { kind: 'timelineHistory', timeline: p.timeline() }
      break
    case 'START_REPLICATION': {
      const slot = p.keyword('SLOT') ? p.identifier('a slot name') : null
      if (p.keyword('LOGICAL')) {
        throw new ReplicationCommandError(
          'logical replication is not supported by this server',
          SQLSTATE_FEATURE_NOT_SUPPORTED,
          { hint: 'Only physical replication is served: START_REPLICATION [SLOT name] [PHYSICAL] X/X.' },
        )
      }
      p.keyword('PHYSICAL')
      const start = p.lsn('a start position X/X')
      const timeline = p.keyword('TIMELINE') ? p.timeline() : null
      command = { kind: 'startReplication', slot, start, timeline }
      break
    }
    default:
      if (UNSUPPORTED_COMMANDS.has(keyword)) {
        throw new ReplicationCommandError(
          `${keyword} is not supported by this server`,
          SQLSTATE_FEATURE_NOT_SUPPORTED,
          { hint: `This walsender serves ${SUPPORTED}.` },
        )
      }
      throw new ReplicationCommandError(
        'cannot execute SQL commands in WAL sender for physical replication',
        SQLSTATE_FEATURE_NOT_SUPPORTED,
        { hint: `This connection speaks the replication protocol: ${SUPPORTED}.` },
      )
  }
  p.end()
  return command
}

/**
 * The kind of session the `replication` startup parameter asks for, with Postgres' spellings of a boolean.
 * Throws ReplicationCommandError (22023) for any other value, which Postgres refuses at startup.
 */
export function replicationMode(params: StartupParams): 'physical' | 'logical' | null {
  const value = params.replication
  if (value === undefined) return null
  const v = value.toLowerCase()
  if (v === 'database') return 'logical'
  if (['true', 'on', 'yes', '1'].includes(v)) return 'physical'
  if (['false', 'off', 'no', '0'].includes(v)) return null
  throw new ReplicationCommandError(
    `invalid value for parameter "replication": "${value}"`,
    SQLSTATE_INVALID_PARAMETER_VALUE,
    { hint: 'Valid values are: "false", 0, "true", 1, "database".' },
  )
}

/** Answers IDENTIFY_SYSTEM, up to CommandComplete. */
export function sendIdentifySystem(conn: PgServerConnection, system: IdentifySystem): void {
  conn.rowDescription([...IDENTIFY_SYSTEM_FIELDS])
  conn.dataRow([system.systemId, String(system.timeline), formatLsn(system.xlogpos), system.dbname])
  conn.commandComplete(COMMAND_TAGS.IDENTIFY_SYSTEM)
}

/** Answers SHOW: one text column named after the parameter, up to CommandComplete. */
export function sendShow(conn: PgServerConnection, name: string, value: string): void {
  conn.rowDescription([{ name, typeOid: TEXT_OID }])
  conn.dataRow([value])
  conn.commandComplete(COMMAND_TAGS.SHOW)
}

/**
 * wal_segment_size as SHOW prints it ("16MB", "1GB"). pg_receivewal reads the number and a unit of MB or GB
 * and gives up on anything else, so the form matters.
 */
export function formatWalSegmentSize(bytes: number): string {
  const MB = 1024 * 1024
  if (bytes % (1024 * MB) === 0) return `${bytes / (1024 * MB)}GB`
  if (bytes % MB === 0) return `${bytes / MB}MB`
  throw new Error(`internal: WAL segment size ${bytes} is not a whole number of MB`)
}

/** Switches the connection to COPY BOTH for START_REPLICATION: text overall format, no columns, as Postgres. */
export function beginStreaming(conn: PgServerConnection): void {
  conn.copyBothResponse({ format: 0 })
  conn.flush()
}

/**
 * Finishes START_REPLICATION once both sides have sent CopyDone. A walsender that ends a historic timeline
 * would send the next timeline as a result set first; one that serves a single timeline never does.
 */
export function endStreaming(conn: PgServerConnection): void {
  conn.commandComplete(COMMAND_TAGS.START_STREAMING)
  conn.commandComplete(COMMAND_TAGS.START_REPLICATION)
}
