/**
 * The storage controller's settings, from `<repo>/storage_controller/storage_controller.toml`, written
 * by `zenith init`:
 *
 *     listen_http_addr = "127.0.0.1:1234"    the upcalls and the control API (neon_local's port)
 *     log_level = "info"
 */
import { readFileSync } from 'node:fs'
import { parse as parseToml, TomlError } from 'smol-toml'
import { writeFileDurable } from '../lib/durable-fs.js'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { formatHostPort, type HostPort, parseHostPort } from '../lib/host-port.js'
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../lib/log.js'

export const STORAGE_CONTROLLER_CONFIG_FILE = 'storage_controller.toml'
export const DEFAULT_STORAGE_CONTROLLER_PORT = 1234

export interface StorageControllerConfig {
  listenHttpAddr: HostPort
  logLevel: LogLevel
}

export class StorageControllerConfigError extends ZenithError {
  static override kind: ErrorKind = 'user_input'
  override name = 'StorageControllerConfigError'
}

export function defaultStorageControllerConfig(
  port = DEFAULT_STORAGE_CONTROLLER_PORT,
): StorageControllerConfig {
  return { listenHttpAddr: { host: '127.0.0.1', port }, logLevel: 'info' }
}

const KNOWN = ['listen_http_addr', 'log_level']

export function parseStorageControllerConfig(doc: Record<string, unknown>): StorageControllerConfig {
  for (const k of Object.keys(doc)) {
    if (!KNOWN.includes(k))
      throw new StorageControllerConfigError(`unknown setting "${k}"; known: ${KNOWN.join(', ')}`)
  }
  const d = defaultStorageControllerConfig()
  const addr = doc.listen_http_addr
  if (addr !== undefined && typeof addr !== 'string')
    throw new StorageControllerConfigError('listen_http_addr must be a string "host:port"')
  const logLevel = doc.log_level ?? d.logLevel
  if (!isLogLevel(logLevel))
    throw new StorageControllerConfigError(
      `log_level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    )
  return {
    listenHttpAddr: addr === undefined ? d.listenHttpAddr : parseHostPort(addr, 'listen_http_addr'),
    logLevel,
  }
}

export function loadStorageControllerConfig(file: string): StorageControllerConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new StorageControllerConfigError(`cannot read ${file}: ${(err as Error).message}`, {
      hint: 'a repo dir made before the storage controller has none: make a new one with `zenith init`',
    })
  }
  try {
    return parseStorageControllerConfig(parseToml(text))
  } catch (err) {
    if (err instanceof TomlError)
      throw new StorageControllerConfigError(`${file}:${err.line}:${err.column}: not valid TOML`)
    throw new StorageControllerConfigError(`${file}: ${(err as Error).message}`)
  }
}

export function saveStorageControllerConfig(file: string, c: StorageControllerConfig): void {
  writeFileDurable(
    file,
    `${[
      '# zenith storage controller settings',
      `listen_http_addr = "${formatHostPort(c.listenHttpAddr)}"`,
      `log_level = "${c.logLevel}"`,
    ].join('\n')}\n`,
  )
}
