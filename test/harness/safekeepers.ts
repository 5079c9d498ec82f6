/**
 * In-process safekeepers for tests: N of them on free ports, each listing the others as peers, every log
 * entry kept for assertions, and the HTTP calls the tests make on one timeline.
 *
 *     const sks = await SafekeeperSet.create(3, { tenant, timeline })
 *     await sks.startAll()
 *     const d = await sks.detail(sks.nodes[0])
 *     await sks.destroy()
 */

import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'vitest'
import { freePort } from '../../src/control/process.js'
import { type Lsn, parseLsn } from '../../src/postgres/lsn.js'
import type { SkTimelineInfo } from '../../src/safekeeper/api-types.js'
import { defaultSafekeeperConfig, type SafekeeperConfig } from '../../src/safekeeper/config.js'
import { Safekeeper } from '../../src/safekeeper/safekeeper.js'
import type { PgCluster } from './postgres.js'

export interface SkNode {
  dir: string
  config: SafekeeperConfig
  sk: Safekeeper | undefined
}

export interface LogEntry {
  id: number
  level: string
  msg: string
  fields?: Record<string, unknown>
}

// biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field against what each route returns
export type Reply = { status: number; json: any }

/** The compute's flush LSN: all a safekeeper can get (its insert LSN may sit past an unflushed page header). */
export const computeFlush = async (pg: PgCluster): Promise<Lsn> =>
  parseLsn(await pg.sql('SELECT pg_current_wal_flush_lsn()'))

/** Runs a committing statement; fails the test instead of hanging when the commit never returns. */
export async function commit(pg: PgCluster, sql: string | string[], ms = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      pg.sql(sql),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${JSON.stringify(sql)} did not return within ${ms} ms`)),
          ms,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export class SafekeeperSet {
  readonly logged: LogEntry[] = []
  readonly tlPath: string

  private constructor(
    readonly nodes: SkNode[],
    readonly tenant: string,
    readonly timeline: string,
  ) {
    this.tlPath = `/v1/tenant/${tenant}/timeline/${timeline}`
  }

  static async create(count: number, tl: { tenant: string; timeline: string }): Promise<SafekeeperSet> {
    const nodes: SkNode[] = []
    for (let id = 1; id <= count; id++) {
      nodes.push({
        dir: await mkdtemp(path.join(os.tmpdir(), `zenith-sk${id}-`)),
        config: {
          ...defaultSafekeeperConfig(id),
          listenPgAddr: { host: '127.0.0.1', port: await freePort() },
          listenHttpAddr: { host: '127.0.0.1', port: await freePort() },
        },
        sk: undefined,
      })
    }
    for (const n of nodes) n.config.peers = nodes.filter((o) => o !== n).map((o) => o.config.listenHttpAddr)
    return new SafekeeperSet(nodes, tl.tenant, tl.timeline)
  }

  async start(n: SkNode): Promise<void> {
    n.sk = await Safekeeper.start(n.dir, {
      config: n.config,
      log: (level, msg, fields) => this.logged.push({ id: n.config.id, level, msg, fields }),
    })
  }

  async stop(n: SkNode): Promise<void> {
    await n.sk?.stop()
    n.sk = undefined
  }

  async startAll(): Promise<void> {
    for (const n of this.nodes) await this.start(n)
  }

  /** Stops every safekeeper and removes their directories. */
  async destroy(): Promise<void> {
    for (const n of this.nodes) await this.stop(n)
    for (const n of this.nodes) await rm(n.dir, { recursive: true, force: true })
  }

  async http(n: SkNode, method: string, p: string, body?: unknown): Promise<Reply> {
    const res = await fetch(`http://127.0.0.1:${n.config.listenHttpAddr.port}${p}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, json: text ? JSON.parse(text) : undefined }
  }

  async detail(n: SkNode): Promise<SkTimelineInfo> {
    return (await this.http(n, 'GET', this.tlPath)).json
  }

  async lsns(n: SkNode): Promise<{ flush: Lsn; commit: Lsn; d: SkTimelineInfo }> {
    const d = await this.detail(n)
    return { flush: parseLsn(d.flush_lsn), commit: parseLsn(d.commit_lsn), d }
  }

  async setCompute(n: SkNode, connstr: string, term: number): Promise<void> {
    const r = await this.http(n, 'PUT', `${this.tlPath}/compute`, { connstr, term })
    expect({ status: r.status, msg: r.json.msg }).toEqual({ status: 200, msg: undefined })
  }

  /** Creates the timeline on every safekeeper. */
  async createTimeline(systemId: string, startLsn: string, walSegSize: number): Promise<void> {
    for (const n of this.nodes) {
      const created = await this.http(n, 'POST', '/v1/tenant/timeline', {
        tenant_id: this.tenant,
        timeline_id: this.timeline,
        system_id: systemId,
        start_lsn: startLsn,
        wal_seg_size: walSegSize,
      })
      expect(created.status).toBe(201)
    }
  }

  httpAddr(n: SkNode): string {
    return `127.0.0.1:${n.config.listenHttpAddr.port}`
  }
}
