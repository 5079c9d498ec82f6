/**
 * The safekeepers' side of the control plane without the CLI: the configs init writes (ports from the
 * bases, each one's peers), the cluster config's list of them (absent in older configs), and a
 * safekeeper run in this process as `zenith start --embedded` runs it: status, timelines, pid file, log;
 * and the safekeepers' view of one timeline that `timeline show` and `pg list` print, with one safekeeper
 * up, one stopped and one whose process lives but does not answer.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { safekeeperConfigFile, safekeeperLogFile, safekeeperPidFile } from '../../src/control/layout.js'
import {
  loadClusterConfig,
  newClusterConfig,
  parseClusterConfig,
  safekeepersOf,
  saveClusterConfig,
} from '../../src/control/repo-config.js'
import {
  runSafekeeper,
  safekeeperConfigs,
  safekeeperStatus,
  writeSafekeeperConfigs,
} from '../../src/control/safekeeper-process.js'
import {
  commitHolderOf,
  listSafekeepers,
  type SafekeeperTimelineView,
  timelineOnSafekeepers,
} from '../../src/control/safekeeper-view.js'
import { loadSafekeeperConfig } from '../../src/safekeeper/config.js'
import { freePortBase } from '../harness/cli.js'

const root = mkdtempSync(path.join(tmpdir(), 'zenith-skproc-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('safekeeperConfigs', () => {
  it('gives safekeeper N the ports base + N and the other safekeepers as peers', () => {
    const configs = safekeeperConfigs(3, { pgPortBase: 15000, httpPortBase: 16000 })
    expect(
      configs.map((c) => ({
        id: c.id,
        pg: c.listenPgAddr.port,
        http: c.listenHttpAddr.port,
        peers: c.peers.map((p) => `${p.host}:${p.port}`),
      })),
    ).toEqual([
      { id: 1, pg: 15001, http: 16001, peers: ['127.0.0.1:16002', '127.0.0.1:16003'] },
      { id: 2, pg: 15002, http: 16002, peers: ['127.0.0.1:16001', '127.0.0.1:16003'] },
      { id: 3, pg: 15003, http: 16003, peers: ['127.0.0.1:16001', '127.0.0.1:16002'] },
    ])
    expect(safekeeperConfigs(1).map((c) => [c.listenPgAddr.port, c.listenHttpAddr.port, c.peers])).toEqual([
      [5455, 7677, []],
    ])
    expect(safekeeperConfigs(0)).toEqual([])
  })

  it('writes each one as safekeepers/sk<N>/safekeeper.toml, which reads back the same', () => {
    const repo = mkdtempSync(path.join(root, 'repo-'))
    const configs = safekeeperConfigs(5, { pgPortBase: 20000, httpPortBase: 21000 })
    writeSafekeeperConfigs(repo, configs)
    for (const c of configs) {
      const file = safekeeperConfigFile(repo, c.id)
      expect(file).toBe(path.join(repo, 'safekeepers', `sk${c.id}`, 'safekeeper.toml'))
      expect(loadSafekeeperConfig(file)).toEqual(c)
    }
  })
})

describe('the cluster config of safekeepers', () => {
  it('has none in a config without the key, and keeps the ids it is given', () => {
    expect(parseClusterConfig({}).safekeepers).toEqual([])
    const repo = mkdtempSync(path.join(root, 'repo-'))
    saveClusterConfig(repo, newClusterConfig({ safekeepers: [1, 2, 3] }))
    expect(readFileSync(path.join(repo, 'config'), 'utf8')).toMatch(/^safekeepers = \[ 1, 2, 3 \]$/m)
    expect(loadClusterConfig(repo).safekeepers).toEqual([1, 2, 3])
  })

  it('refuses ids that are not distinct integers in 1..99', () => {
    for (const bad of [[0], [1, 1], ['1'], 3, [100]]) {
      expect(() => parseClusterConfig({ safekeepers: bad })).toThrow(
        'safekeepers must be a list of distinct safekeeper ids in 1..99',
      )
    }
  })

  it('names the ids it has when asked for one it has not', () => {
    const c = newClusterConfig({ safekeepers: [1, 2, 3] })
    expect(safekeepersOf(c)).toEqual([1, 2, 3])
    expect(safekeepersOf(c, 2)).toEqual([2])
    expect(() => safekeepersOf(c, 9)).toThrow('unknown safekeeper 9; safekeepers: 1, 2, 3')
    expect(() => safekeepersOf(newClusterConfig(), 1)).toThrow(
      'unknown safekeeper 1: the cluster has no safekeepers',
    )
  })
})

describe('runSafekeeper', () => {
  it('serves as safekeeper N with its pid file and log, lists its timelines, and stops cleanly', async () => {
    const repo = mkdtempSync(path.join(root, 'repo-'))
    const base = await freePortBase(2)
    saveClusterConfig(repo, newClusterConfig({ safekeepers: [1] }))
    writeSafekeeperConfigs(repo, safekeeperConfigs(1, { pgPortBase: base, httpPortBase: base + 1 }))

    const running = await runSafekeeper(repo, 1, { logToStdout: false })
    try {
      expect(readFileSync(safekeeperPidFile(repo, 1), 'utf8')).toBe(`${process.pid}\n`)
      expect(await safekeeperStatus(repo, 1)).toEqual({
        id: 1,
        state: 'running',
        running: true,
        pid: process.pid,
        http: `127.0.0.1:${base + 2}`,
        pg: `127.0.0.1:${base + 1}`,
        http_port: base + 2,
        pg_port: base + 1,
        reachable: true,
        log_file: safekeeperLogFile(repo, 1),
      })
      await running.server.createTimeline({
        tenantId: 'c3'.repeat(16),
        timelineId: 'd4'.repeat(16),
        systemId: '7',
        startLsn: 0x2000000,
        pgTimeline: 1,
        walSegSize: 16 * 1024 * 1024,
      })
      expect(await listSafekeepers(repo)).toEqual([
        {
          id: 1,
          status: 'running',
          died: false,
          pid: process.pid,
          pg_port: base + 1,
          http_port: base + 2,
          timelines: [
            {
              tenant_id: 'c3'.repeat(16),
              timeline_id: 'd4'.repeat(16),
              term: 0,
              flush_lsn: '0/2000000',
              commit_lsn: '0/2000000',
              // No compute writes to the timeline.
              lag_bytes: null,
            },
          ],
        },
      ])
    } finally {
      await running.stop()
    }
    // A clean stop takes the pid file along: stopped, not died.
    expect(existsSync(safekeeperPidFile(repo, 1))).toBe(false)
    const s = await safekeeperStatus(repo, 1)
    expect(s).toMatchObject({ state: 'stopped', pid: null, reachable: false })
    expect(s.last_log_lines).toBeUndefined()
    const log = readFileSync(safekeeperLogFile(repo, 1), 'utf8').trimEnd().split('\n')
    expect(log.map((l) => /^\S+Z INFO {2}(safekeeper \w+|timeline \w+)/.exec(l)?.[1])).toEqual([
      'safekeeper started',
      'timeline created',
      'safekeeper stopped',
    ])
  })

  it('refuses to run while its pid file names another live process', async () => {
    const repo = mkdtempSync(path.join(root, 'repo-'))
    saveClusterConfig(repo, newClusterConfig({ safekeepers: [1] }))
    writeSafekeeperConfigs(repo, safekeeperConfigs(1, { pgPortBase: 1, httpPortBase: 1 }))
    // Our parent lives as long as we do, and is not us.
    writeFileSync(safekeeperPidFile(repo, 1), `${process.ppid}\n`)
    await expect(runSafekeeper(repo, 1, { logToStdout: false })).rejects.toThrow(
      `safekeeper 1 is already running (pid ${process.ppid})`,
    )
  })
})

describe('timelineOnSafekeepers', () => {
  it('shows the one that answers, and the stopped and the silent one as unreachable, without failing', async () => {
    const repo = mkdtempSync(path.join(root, 'repo-'))
    const base = await freePortBase(6)
    saveClusterConfig(repo, newClusterConfig({ safekeepers: [1, 2, 3] }))
    writeSafekeeperConfigs(repo, safekeeperConfigs(3, { pgPortBase: base, httpPortBase: base + 3 }))
    // Safekeeper 2 never started; safekeeper 3's pid file names a live process (our parent) that
    // listens on none of its ports.
    writeFileSync(safekeeperPidFile(repo, 3), `${process.ppid}\n`)
    const running = await runSafekeeper(repo, 1, { logToStdout: false })
    const [tenant, timeline] = ['e5'.repeat(16), 'f6'.repeat(16)]
    try {
      const unknown = await timelineOnSafekeepers(repo, tenant, timeline)
      const down = { term: null, flush_lsn: null, commit_lsn: null, lag_seconds: null, reachable: false }
      expect(unknown).toEqual({
        commit_lsn: null,
        commit_lag_seconds: null,
        safekeepers: [
          { id: 1, reachable: true, term: null, flush_lsn: null, commit_lsn: null, lag_seconds: null },
          { id: 2, ...down },
          { id: 3, ...down },
        ],
      })
      await running.server.createTimeline({
        tenantId: tenant,
        timelineId: timeline,
        systemId: '7',
        startLsn: 0x3000000,
        pgTimeline: 1,
        walSegSize: 16 * 1024 * 1024,
      })
      // No compute has streamed to it: it has heard no end to measure seconds against.
      const noLag = { flush: null, commit: null }
      expect(await timelineOnSafekeepers(repo, tenant, timeline)).toEqual({
        commit_lsn: '0/3000000',
        commit_lag_seconds: null,
        safekeepers: [
          {
            id: 1,
            reachable: true,
            term: 0,
            flush_lsn: '0/3000000',
            commit_lsn: '0/3000000',
            lag_seconds: noLag,
          },
          { id: 2, ...down },
          { id: 3, ...down },
        ],
      })
    } finally {
      await running.stop()
      rmSync(safekeeperPidFile(repo, 3), { force: true })
    }
  })

  it('takes commit_lsn from the newest term only', () => {
    const v = (id: number, term: number | null, commit: string | null): SafekeeperTimelineView => ({
      id,
      reachable: term !== null,
      term,
      flush_lsn: commit,
      commit_lsn: commit,
      lag_seconds: term === null ? null : { flush: 0, commit: id / 10 },
    })
    const holder = (views: SafekeeperTimelineView[]) => {
      const h = commitHolderOf(views)
      return h && [h.id, h.commit_lsn, h.lag_seconds?.commit]
    }
    expect(holder([v(1, 2, '0/5000000'), v(2, 3, '0/4000000'), v(3, 3, '0/4100000')])).toEqual([
      3,
      '0/4100000',
      0.3,
    ])
    expect(holder([v(1, null, null), v(2, 1, '0/1000000')])).toEqual([2, '0/1000000', 0.2])
    expect(holder([v(1, null, null)])).toBeNull()
    expect(holder([])).toBeNull()
  })
})
