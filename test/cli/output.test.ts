import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Output } from '../../src/cli/output.js'
import { renderBranchTree, renderEndpoints, renderSafekeepers, renderTimeline } from '../../src/cli/render.js'
import type { EndpointRow } from '../../src/control/endpoints.js'
import { lsnLadder } from '../../src/control/lsn-ladder.js'
import type { SafekeeperRow, SafekeeperTimelineView } from '../../src/control/safekeeper-view.js'
import type { BranchDetail, BranchRow } from '../../src/control/tenants.js'

const ESC = '\x1b['

const tty = { isTTY: true, write: () => true } as unknown as NodeJS.WritableStream
const pipe = { isTTY: false, write: () => true } as unknown as NodeJS.WritableStream

function endpoint(name: string, status: 'running' | 'stopped', port: number): EndpointRow {
  return {
    name,
    branch: name === 'past' ? 'main' : name,
    tenant_id: 'a'.repeat(32),
    timeline_id: 'b'.repeat(32),
    port,
    status,
    connstr: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    lsn: name === 'past' ? '0/16B3748' : null,
  }
}

const ENDPOINTS = [
  endpoint('main', 'running', 55432),
  endpoint('past', 'stopped', 55433),
  endpoint('dev', 'running', 55434),
]

/** The start offset of every column of a table line, taken from the header's column starts. */
function columnStarts(header: string): number[] {
  return [...header.matchAll(/(?:^|\s{2})(\S)/g)].map((m) => m.index + m[0].length - 1)
}

describe('the output writer', () => {
  it('lines up pg list columns with colour forced: widths count visible text only', () => {
    const out = new Output(pipe, { FORCE_COLOR: '1' })
    const text = renderEndpoints(out, ENDPOINTS, { ids: true })
    expect(text).toContain(ESC)
    const lines = text.split('\n').map((l) => stripVTControlCharacters(l))
    const starts = columnStarts(lines[0])
    expect(starts).toHaveLength(12)
    for (const line of lines.slice(1)) {
      for (const s of starts.slice(1)) expect(line[s - 1], `column at ${s} in "${line}"`).toBe(' ')
      for (const s of starts) expect(line[s], `column at ${s} in "${line}"`).not.toBe(' ')
    }
    // STATUS holds "running" in colour and "stopped" without: the column after it starts at one offset.
    const lsnAt = starts[6]
    expect(lines.map((l) => l.slice(lsnAt).split(' ')[0])).toEqual(['LSN', 'latest', '0/16B3748', 'latest'])
  })

  it("shows each writer's WAL receiver, and why one is broken under the table", () => {
    const rows: EndpointRow[] = [
      { ...endpoint('main', 'running', 55432), walreceiver: { status: 'streaming', error: null } },
      {
        ...endpoint('dev', 'running', 55434),
        walreceiver: { status: 'broken', error: 'postgresql://… does not have the WAL from 0/1500780 on' },
      },
      { ...endpoint('past', 'stopped', 55433), walreceiver: null },
    ]
    const lines = renderEndpoints(new Output(pipe, {}), rows).split('\n')
    const at = lines[0].indexOf('WAL RECEIVER')
    expect(lines.slice(1, 4).map((l) => l.slice(at).split(' ')[0])).toEqual(['streaming', 'broken', '-'])
    expect(lines.slice(4)).toEqual([
      '',
      'endpoint dev: the WAL of branch dev is not being ingested: postgresql://… does not have the WAL from 0/1500780 on',
    ])
  })

  it("puts the safekeepers' commit LSN beside the pageserver's, and names those that did not answer", () => {
    const sk = (id: number, commit: string | null): SafekeeperTimelineView => ({
      id,
      reachable: commit !== null,
      term: commit === null ? null : 2,
      flush_lsn: commit,
      commit_lsn: commit,
      lag_seconds: commit === null ? null : { flush: 0, commit: 0 },
    })
    const lsns = { last_record_lsn: '0/1A00000', disk_consistent_lsn: '0/1500780' }
    const rows: EndpointRow[] = [
      {
        ...endpoint('main', 'running', 55432),
        ...lsns,
        commit_lsn: '0/1A2B3C8',
        safekeepers: [sk(1, '0/1A2B3C8'), sk(2, null)],
      },
      {
        ...endpoint('past', 'running', 55433),
        last_record_lsn: null,
        disk_consistent_lsn: null,
        commit_lsn: null,
        safekeepers: [],
      },
    ]
    const lines = renderEndpoints(new Output(pipe, {}), rows).split('\n')
    const col = (name: string) => lines.slice(0, 3).map((l) => l.slice(lines[0].indexOf(name)).split(' ')[0])
    expect(col('PS LAST')).toEqual(['PS', '0/1A00000', '-'])
    expect(col('PS DISK')).toEqual(['PS', '0/1500780', '-'])
    expect(col('SK COMMIT')).toEqual(['SK', '0/1A2B3C8', '-'])
    expect(col('LAG')).toEqual(['LAG', '-', '-'])
    expect(lines.slice(3)).toEqual([
      '',
      'safekeeper 2 not reachable: SK COMMIT counts only those that answer',
    ])
    // Without safekeepers there is no commit LSN column, and no note.
    const direct = renderEndpoints(new Output(pipe, {}), [{ ...rows[0], commit_lsn: null, safekeepers: [] }])
    expect(direct).not.toContain('SK COMMIT')
    expect(direct.split('\n')).toHaveLength(2)
  })

  it("draws pg list's LAG from the ladder: the safekeepers' commit and the pageserver's last record", () => {
    const ladder = lsnLadder({
      compute: { insert_lsn: '0/2000100', flush_lsn: '0/2000000' },
      safekeepers: [{ id: 1, flush_lsn: '0/2000000', lag_seconds: { flush: 0, commit: 0 } }],
      commit: { lsn: '0/2000000', lag_seconds: 0 },
      pageserver: {
        last_record_lsn: '0/1ECC000',
        disk_consistent_lsn: '0/1500780',
        remote_consistent_lsn: '0/1500780',
        latest_gc_cutoff_lsn: '0/0',
        lag_seconds: { last_record: 0.84, disk_consistent: 75.2, remote_consistent: 75.2 },
      },
    })
    const direct = ladder.filter((r) => r.name !== 'commit' && r.name !== 'safekeeper_flush')
    const unknown = ladder.map((r) => ({ ...r, lag_bytes: null, lag_seconds: null }))
    const rows: EndpointRow[] = [
      { ...endpoint('main', 'running', 55432), ladder },
      { ...endpoint('dev', 'running', 55434), ladder: direct },
      { ...endpoint('past', 'stopped', 55433) },
      { ...endpoint('old', 'stopped', 55435), ladder: unknown },
    ]
    const lines = renderEndpoints(new Output(pipe, {}), rows).split('\n')
    const at = lines[0].indexOf('LAG')
    const lagOf = (l: string) => l.slice(at, lines[0].indexOf('WAL RECEIVER')).trimEnd()
    expect(lines.slice(1).map(lagOf)).toEqual([
      'sk 0 B/0.0 s, ps 1.2 MiB/0.8 s',
      'ps 1.2 MiB/0.8 s',
      '-',
      '-',
    ])
  })

  it("shows a timeline's LSN ladder with each rung's lag, and each safekeeper, reachable or not", () => {
    const lsns = {
      last_record_lsn: '0/1A00000',
      disk_consistent_lsn: '0/1500780',
      remote_consistent_lsn: '0/1500780',
      latest_gc_cutoff_lsn: '0/0',
    }
    const ladder = lsnLadder({
      compute: { insert_lsn: '0/1A2B3D0', flush_lsn: '0/1A2B3C8' },
      safekeepers: [
        { id: 1, flush_lsn: '0/1A2B3C8', lag_seconds: { flush: 0, commit: 0 } },
        { id: 2, flush_lsn: null, lag_seconds: null },
        { id: 3, flush_lsn: null, lag_seconds: null },
      ],
      commit: { lsn: '0/1A2B3C8', lag_seconds: 0 },
      pageserver: {
        ...lsns,
        lag_seconds: { last_record: 0.25, disk_consistent: 92.7, remote_consistent: 92.7 },
      },
    })
    const t = {
      branch: 'main',
      tenant_id: 'a'.repeat(32),
      timeline_id: 'b'.repeat(32),
      pageserver_id: 2,
      ancestor_branch: null,
      ...lsns,
      current_logical_size: 2048,
      walreceiver_status: 'streaming',
      walreceiver_error: null,
      wal_source_connstr: 'postgresql://postgres@127.0.0.1:5455/',
      walreceiver_safekeeper: 1,
      last_received_msg_lsn: '0/1A00000',
      commit_lsn: '0/1A2B3C8',
      safekeepers: [
        { id: 1, reachable: true, term: 2, flush_lsn: '0/1A2B3C8', commit_lsn: '0/1A2B3C8' },
        { id: 2, reachable: false, term: null, flush_lsn: null, commit_lsn: null },
        { id: 3, reachable: true, term: null, flush_lsn: null, commit_lsn: null },
      ],
      ladder,
    } as unknown as BranchDetail
    const lines = renderTimeline(new Output(pipe, {}), t).split('\n')
    expect(lines[3]).toBe('pageserver             2')
    expect(lines.slice(5, 16)).toEqual([
      'compute insert         0/1A2B3D0',
      'compute flush          0/1A2B3C8',
      'safekeeper 1 flush     0/1A2B3C8  caught up',
      'safekeeper 2 flush     -',
      'safekeeper 3 flush     -',
      'commit_lsn             0/1A2B3C8  caught up',
      'last_record_lsn        0/1A00000  172.9 KiB behind, 0.3 s',
      'disk_consistent_lsn    0/1500780  5.2 MiB behind, 93 s',
      'remote_consistent_lsn  0/1500780  5.2 MiB behind, 93 s',
      'latest_gc_cutoff_lsn   0/0',
      'current_logical_size   2.0 KiB',
    ])
    expect(lines).toContain('wal receiver           streaming from safekeeper 1')
    expect(lines.slice(-3)).toEqual([
      'safekeeper 1           term 2, flush_lsn 0/1A2B3C8, commit_lsn 0/1A2B3C8',
      'safekeeper 2           unreachable',
      'safekeeper 3           does not hold the timeline',
    ])
    // Without safekeepers and a running compute the ladder is the pageserver's, measured against its top.
    const direct = renderTimeline(new Output(pipe, {}), {
      ...t,
      commit_lsn: null,
      safekeepers: [],
      walreceiver_safekeeper: undefined,
      ladder: lsnLadder({
        compute: null,
        safekeepers: [],
        commit: null,
        pageserver: { ...lsns, lag_seconds: null },
      }),
    })
    expect(direct).not.toMatch(/commit_lsn|safekeeper|compute/)
    expect(direct).toContain('last_record_lsn        0/1A00000  caught up')
    expect(direct).toContain('disk_consistent_lsn    0/1500780  5.0 MiB behind\n')
    expect(direct).toContain('streaming from postgresql://postgres@127.0.0.1:5455/')
  })

  it("shows each safekeeper's lag behind the compute, and one that died", () => {
    const tl = (lag: number | null) => ({
      tenant_id: 'a'.repeat(32),
      timeline_id: 'b'.repeat(32),
      term: 2,
      flush_lsn: '0/1A00000',
      commit_lsn: '0/1A00000',
      lag_bytes: lag,
    })
    const rows: SafekeeperRow[] = [
      {
        id: 1,
        status: 'running',
        died: false,
        pid: 7,
        pg_port: 5455,
        http_port: 7677,
        timelines: [tl(0), tl(3 * 1024 * 1024)],
      },
      {
        id: 2,
        status: 'running',
        died: false,
        pid: 8,
        pg_port: 5456,
        http_port: 7678,
        timelines: [tl(null), tl(-512)],
      },
      { id: 3, status: 'stopped', died: true, pid: null, pg_port: 5457, http_port: 7679, timelines: null },
    ]
    const lines = renderSafekeepers(new Output(pipe, {}), rows).split('\n')
    expect(lines[3]).toMatch(/^3 +died +- +5457 +7679 +-$/)
    const lagAt = lines[5].indexOf('LAG')
    expect(lines.slice(6).map((l) => l.slice(lagAt))).toEqual(['0 B', '3.0 MiB', '-', 'ahead 512 B'])
  })

  it('uses colour on a TTY, never with NO_COLOR, and not in a pipe', () => {
    expect(renderEndpoints(new Output(tty, {}), ENDPOINTS)).toContain(ESC)
    expect(renderEndpoints(new Output(tty, { NO_COLOR: '1' }), ENDPOINTS)).not.toContain(ESC)
    expect(renderEndpoints(new Output(pipe, { NO_COLOR: '1', FORCE_COLOR: '1' }), ENDPOINTS)).not.toContain(
      ESC,
    )
    expect(renderEndpoints(new Output(pipe, {}), ENDPOINTS)).not.toContain(ESC)
  })

  it('draws siblings with ┣━ and the last child with ┗━, deeper levels under ┃', () => {
    const row = (branch: string, id: string, ancestor: string | null, at: string | null): BranchRow =>
      ({
        branch,
        timeline_id: id,
        ancestor_timeline_id: ancestor,
        ancestor_lsn: at,
        last_record_lsn: '0/2000000',
      }) as BranchRow
    const rows = [
      row('main', 'm', null, null),
      row('dev', 'd', 'm', '0/1000000'),
      row('fix', 'f', 'd', '0/1800000'),
      row('test', 't', 'm', '0/1500000'),
    ]
    const lines = renderBranchTree(new Output(pipe, {}), rows)
      .split('\n')
      .map((l) => l.replace(/ {2}\S+ {2}last \S+$/, ''))
    expect(lines).toEqual(['main', '┣━ dev @0/1000000', '┃  ┗━ fix @0/1800000', '┗━ test @0/1500000'])
  })

  it('pads key/value fields to one width', () => {
    const out = new Output(pipe, {})
    expect(
      out.fields([
        ['a', '1'],
        ['longer', '2'],
      ]),
    ).toBe('a       1\nlonger  2')
  })
})
