/**
 * The pageserver's log: one line per event, `<ISO time> <LEVEL> <message> key=value ...`, so a person
 * can read it with `tail -f` and a script can still pick the fields out. A detached pageserver writes it
 * to stdout, which is its log file; an embedded one appends to the same file directly.
 */
import { createWriteStream } from 'node:fs'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void

export type Logger = LogFn & { close(): Promise<void> }

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

/** A logger appending to `file`, or writing to `stream` (stdout of a detached process). */
export function createLogger(target: { file: string } | { stream: NodeJS.WritableStream }): Logger {
  const out = 'file' in target ? createWriteStream(target.file, { flags: 'a' }) : target.stream
  const log = ((level, msg, fields) => {
    out.write(formatLogLine(level, msg, fields))
  }) as Logger
  log.close = () =>
    'file' in target
      ? new Promise<void>((resolve) => (out as ReturnType<typeof createWriteStream>).end(resolve))
      : Promise.resolve()
  return log
}
