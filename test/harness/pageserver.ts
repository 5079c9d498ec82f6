/** An in-process pageserver for tests: both ports free at run time on 127.0.0.1. */
import { freePort } from '../../src/control/process.js'
import type { RepositoryOptions } from '../../src/engine/repository.js'
import type { LogFn } from '../../src/lib/log.js'
import { DEFAULT_PAGESERVER_CONFIG, type PageserverConfig } from '../../src/pageserver/config.js'
import { Pageserver } from '../../src/pageserver/pageserver.js'

export interface TestPageserver {
  ps: Pageserver
  /** `http://127.0.0.1:<port>` of its HTTP API. */
  api: string
  /** Port of its page service. */
  pgPort: number
}

export async function startTestPageserver(
  dir: string,
  log: LogFn,
  config: Partial<PageserverConfig> = {},
  remote?: RepositoryOptions['remote'],
): Promise<TestPageserver> {
  const pgPort = await freePort()
  const httpPort = await freePort()
  const ps = await Pageserver.start(dir, {
    log,
    config: {
      ...DEFAULT_PAGESERVER_CONFIG,
      listenPgAddr: { host: '127.0.0.1', port: pgPort },
      listenHttpAddr: { host: '127.0.0.1', port: httpPort },
      ...config,
    },
    remote,
  })
  return { ps, api: `http://127.0.0.1:${httpPort}`, pgPort }
}
