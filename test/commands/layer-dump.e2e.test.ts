/**
 * `zenith layer dump` and `zenith wal dump --branch` as a user runs them, on a real cluster: rows inserted
 * into a table end up in a layer file the checkpoint writes, the dump shows that relation's blocks at the
 * LSNs of the heap records that wrote them (cross-checked against the WAL the safekeeper holds), the
 * same by path with the pageserver stopped, and without safekeepers the branch's WAL comes from the
 * compute's pg_wal.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LayerDump } from '../../src/control/layer-dump.js'
import { parseLayerName } from '../../src/engine/layer-name.js'
import { formatLsn, parseLsn } from '../../src/postgres/lsn.js'
import type { RecordJson } from '../../src/postgres/waldump-format.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { jsonRequest } from '../harness/http.js'
import { makeTempDir } from '../harness/postgres.js'
import { query } from '../harness/sql.js'
import { waitUntil } from '../harness/wait.js'

const ROWS = 300

/** Creates a table, inserts rows, and returns the relation and the LSNs around the insert. */
async function insertRows(connstr: string) {
  await query(connstr, 'CREATE TABLE t (id int, pad text)')
  const [{ db, fn }] = await query<{ db: number; fn: number }>(
    connstr,
    "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()) AS db, pg_relation_filenode('t') AS fn",
  )
  const [{ lsn: before }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_insert_lsn() AS lsn')
  await query(connstr, `INSERT INTO t SELECT i, repeat('x', 40) FROM generate_series(1, ${ROWS}) i`)
  const [{ lsn: after }] = await query<{ lsn: string }>(connstr, 'SELECT pg_current_wal_insert_lsn() AS lsn')
  return {
    rel: `1663/${db}/${fn}`,
    db: Number(db),
    fn: Number(fn),
    start: parseLsn(before),
    end: parseLsn(after),
  }
}

function walRecords(stdout: string): RecordJson[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RecordJson)
}

function heapInserts(records: readonly RecordJson[], fn: number): RecordJson[] {
  return records.filter(
    (r) => r.rmgr === 'Heap' && /^INSERT/.test(r.type) && r.blocks.some((b) => b.rel === fn),
  )
}

describe('zenith layer dump and wal dump --branch, with a safekeeper', () => {
  let c: Cluster
  let main: MainEndpoint
  let ins: Awaited<ReturnType<typeof insertRows>>
  let layerName: string
  let layerPath: string
  let byName: LayerDump

  beforeAll(async () => {
    c = await newCluster('layer-dump', {}, ['--num-safekeepers', '1'])
    main = await startMain(c)
    ins = await insertRows(main.connstr)
    const ps = `http://127.0.0.1:${c.http}`
    await waitUntil('the pageserver has ingested the insert', async () => {
      const tl = await jsonRequest(ps, 'GET', main.tlPath)
      return parseLsn(tl.json.last_record_lsn) >= ins.end
    })
    const cp = await jsonRequest(ps, 'PUT', `${main.tlPath}/checkpoint`)
    expect(cp.status).toBe(200)
    const tlDir = path.join(c.repo, 'pageserver', 'tenants', main.tenantId, 'timelines', main.timelineId)
    // The delta layer whose LSN range holds the insert: what the checkpoint flushed.
    const names = readdirSync(tlDir).filter((n) => {
      const d = parseLayerName(n)
      return d !== null && d.kind === 'delta' && d.lsnStart <= ins.start && ins.end <= d.lsnEnd
    })
    expect(names).toHaveLength(1)
    layerName = names[0]
    layerPath = path.join(tlDir, layerName)
  }, 90_000)
  afterAll(() => teardown(c))

  it("shows the relation's blocks as images at the end LSNs of the heap INSERT records that wrote them", async () => {
    byName = JSON.parse(await c.ok('layer', 'dump', layerName, '--rel', ins.rel, '--json'))
    const s = byName.summary
    expect(s).toMatchObject({ name: layerName, file: layerPath, kind: 'delta', format_version: 2 })
    expect(s).toMatchObject({
      tenant_id: main.tenantId,
      timeline_id: main.timelineId,
      key_range: 'min .. max',
    })
    expect(s.entries).toBe(s.images + s.records)
    expect(s.matching_entries).toBe(byName.entries.length)
    expect(s.omitted_entries).toBe(0)
    expect(s.file_size).toBe(s.blocks * s.block_size)

    const blocks = byName.entries.filter((e) => e.key !== `rel ${ins.rel} size`)
    expect(blocks.length).toBeGreaterThanOrEqual(ROWS)
    for (const e of blocks) {
      expect(e.key).toMatch(new RegExp(`^rel ${ins.rel} blk \\d+$`))
      expect(e).toMatchObject({
        kind: 'image',
        will_init: true,
        size: 8192,
        description: `page, pd_lsn ${e.lsn}`,
      })
    }
    const inInsert = blocks.filter((e) => parseLsn(e.lsn) > ins.start && parseLsn(e.lsn) <= ins.end)
    expect(inInsert.length).toBeGreaterThanOrEqual(ROWS)
    const written = new Set(inInsert.map((e) => Number(e.key.split(' ').pop())))
    expect(written.size).toBeGreaterThanOrEqual(2)
    expect([...written].sort((a, b) => a - b)).toEqual([...Array(written.size).keys()])

    // The safekeeper's WAL of the branch: each image sits at the end of a heap INSERT into its block —
    // the last record starting below its LSN.
    const wal = await c.zenith('wal', 'dump', '--branch', 'main', '--json')
    expect(wal.exitCode, wal.stdout.slice(-600)).toBe(0)
    expect(wal.stderr).toMatch(/^WAL of branch main from safekeeper 1 \(flush_lsn \d+\/[0-9A-F]+\): .*sk1/m)
    const records = walRecords(wal.stdout)
    const inserts = heapInserts(records, ins.fn)
    expect(inserts).toHaveLength(ROWS)
    expect(new Set(inserts.map((r) => r.blocks[0].blk))).toEqual(written)
    for (const r of inserts) {
      expect(parseLsn(r.lsn)).toBeGreaterThanOrEqual(ins.start)
      expect(parseLsn(r.lsn)).toBeLessThan(ins.end)
    }
    const starts = records.map((r) => parseLsn(r.lsn))
    for (const e of inInsert) {
      const at = parseLsn(e.lsn)
      let i = starts.length - 1
      while (starts[i] >= at) i--
      const writer = records[i]
      const blk = Number(e.key.split(' ').pop())
      expect(writer, `the record before ${e.lsn}`).toMatchObject({
        rmgr: 'Heap',
        type: expect.stringMatching(/^INSERT/),
      })
      expect(writer.blocks.some((b) => b.rel === ins.fn && b.blk === blk)).toBe(true)
    }
  }, 60_000)

  it('prints the summary and a table, and says what --limit left out', async () => {
    const out = await c.ok('layer', 'dump', layerName, '--rel', ins.rel, '--limit', '2')
    expect(out).toMatch(new RegExp(`^layer +${layerName}$`, 'm'))
    expect(out).toMatch(/^format +version 2, delta layer$/m)
    expect(out).toMatch(/^KEY +LSN +KIND +WILL INIT +SIZE +VALUE$/m)
    expect(out).toContain(`rel ${ins.rel} blk 0`)
    const total = byName.summary.matching_entries
    expect(out).toContain(`… ${total - 2} more of ${total} entries (--limit)`)
    const one = JSON.parse(
      await c.ok('layer', 'dump', layerName, '--key', byName.entries[0].key_hex, '--json'),
    )
    expect(one.entries.every((e: { key_hex: string }) => e.key_hex === byName.entries[0].key_hex)).toBe(true)
  })

  it('reads the file by path with the pageserver stopped, with the same result', async () => {
    await c.ok('pageserver', 'stop')
    const byPath = JSON.parse(await c.ok('layer', 'dump', layerPath, '--rel', ins.rel, '--json'))
    expect(byPath).toEqual(byName)
  })

  it('refuses bad input: an unknown layer, --key with --rel, a corrupt block', async () => {
    const other = layerName.replace(/__.*/, '__0000000000000001-0000000000000002')
    const unknown = await c.zenith('layer', 'dump', other)
    expect(unknown.exitCode).toBe(1)
    expect(unknown.stderr).toMatch(
      new RegExp(`^Error: no layer ${other} in branch main: looked in .*${main.timelineId}$`, 'm'),
    )

    const both = await c.zenith(
      'layer',
      'dump',
      layerName,
      '--rel',
      ins.rel,
      '--key',
      byName.entries[0].key_hex,
    )
    expect(both.exitCode).toBe(2)
    expect(both.stderr).toMatch(/cannot also be provided when using/)

    const dir = await makeTempDir('zenith-e2e-layer-corrupt-')
    const damaged = path.join(dir, layerName)
    const bytes = readFileSync(layerPath)
    bytes[8192 + 17] ^= 0x01
    writeFileSync(damaged, bytes)
    const bad = await c.zenith('layer', 'dump', damaged)
    expect(bad.exitCode).toBe(1)
    expect(bad.stderr).toMatch(
      new RegExp(
        `^Error: layer file ${damaged}: the \\d+-byte value at offset 8192 fails its CRC-32C check$`,
        'm',
      ),
    )
    const badJson = await c.zenith('layer', 'dump', damaged, '--json')
    expect(badJson.exitCode).toBe(1)
    expect(JSON.parse(badJson.stdout).error.kind).toBe('corruption')
  })
})

describe('zenith wal dump --branch without safekeepers', () => {
  let c: Cluster

  beforeAll(async () => {
    c = await newCluster('wal-dump-pgwal', {}, ['--num-safekeepers', '0'])
  }, 60_000)
  afterAll(() => teardown(c))

  it("reads the branch's WAL from its compute's pg_wal", async () => {
    const main = await startMain(c)
    const ins = await insertRows(main.connstr)
    const wal = await c.zenith('wal', 'dump', '--branch', 'main', '--json')
    expect(wal.exitCode, wal.stdout.slice(-600)).toBe(0)
    expect(wal.stderr).toMatch(/^WAL of branch main from the pg_wal of endpoint main: .*pgdata\/pg_wal$/m)
    const inserts = heapInserts(walRecords(wal.stdout), ins.fn)
    expect(inserts).toHaveLength(ROWS)
    expect(parseLsn(inserts[0].lsn)).toBeGreaterThanOrEqual(ins.start)
    expect(parseLsn(inserts[ROWS - 1].lsn)).toBeLessThan(ins.end)

    const text = await c.zenith('wal', 'dump', '--branch', 'main', '--start', formatLsn(ins.start))
    expect(text.exitCode).toBe(0)
    expect(text.stdout).toMatch(
      new RegExp(`^rmgr: Heap +len .* desc: INSERT(\\+INIT)?, blkref #0: rel ${ins.rel} blk 0`, 'm'),
    )

    const neither = await c.zenith('wal', 'dump')
    expect(neither.exitCode).toBe(2)
    const unknown = await c.zenith('wal', 'dump', '--branch', 'nope')
    expect(unknown.exitCode).toBe(1)
    expect(unknown.stderr).toMatch(/^Error: unknown branch "nope"/m)
  }, 60_000)
})
