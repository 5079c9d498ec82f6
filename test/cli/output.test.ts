import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Output } from '../../src/cli/output.js'
import { renderBranchTree, renderEndpoints } from '../../src/cli/render.js'
import type { EndpointRow } from '../../src/control/endpoints.js'
import type { BranchRow } from '../../src/control/tenants.js'

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
    expect(starts).toHaveLength(9)
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
      "endpoint dev: the pageserver's WAL receiver is broken: postgresql://… does not have the WAL from 0/1500780 on",
    ])
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
