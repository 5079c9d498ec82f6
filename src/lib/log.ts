/**
 * The pageserver's log: one line per event, `<ISO time> <LEVEL> <message> key=value ...`, so a person
 * can read it with `tail -f` and a script can still pick the fields out. A detached pageserver writes it
 * to stdout, which is its log file; an embedded one appends to the same file directly.
 */
import { createWriteStream } from 'node:fs'

/** Least to most severe: a logger at one level drops the lines of the levels before it. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const

export type LogLevel = (typeof LOG_LEVELS)[number]

export const isLogLevel = (v: unknown): v is LogLevel => LOG_LEVELS.includes(v as LogLevel)

export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void

/**
 * `level` may change while the logger runs: the pageserver knows its configured level only after it has
 * read its config, and a config it cannot read is worth a log line too.
 */
export type Logger = LogFn & { level: LogLevel; close(): Promise<void> }

function formatField(v: unknown): string {
  const s = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

export function formatLogLine(
  level: string,
  msg: string,
  fields: Record<string, unknown> = {},
  now = new Date(),
): string {
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}=${formatField(v)}`)
    .join('')
  return `${now.toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${kv}\n`
}

/**
 * A logger appending to `file`, or writing to `stream` (stdout of a detached process), that drops lines
 * below `level` (default info).
 */
export function createLogger(
  target: { file: string } | { stream: NodeJS.WritableStream },
  level: LogLevel = 'info',
): Logger {
  const out = 'file' in target ? createWriteStream(target.file, { flags: 'a' }) : target.stream
  const log = ((lineLevel, msg, fields) => {
    if (LOG_LEVELS.indexOf(lineLevel) < LOG_LEVELS.indexOf(log.level)) return
    out.write(formatLogLine(lineLevel, msg, fields))
  }) as Logger
  log.level = level
  log.close = () =>
    'file' in target
      ? new Promise<void>((resolve) => (out as ReturnType<typeof createWriteStream>).end(resolve))
      : Promise.resolve()
  return log
}
