/**
 * `timeline layers`, `layer map` and `timeline checkpoint|compact|gc` as a user runs them: the built CLI on
 * one real cluster with a small checkpoint_distance, so that a few megabytes of WAL make several layers.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { XMLValidator } from 'fast-xml-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LayerMapGeometry } from '../../src/cli/layer-map-geometry.js'
import type { BranchLayers, LayerOperationReport } from '../../src/control/layers.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { query, queryText } from '../harness/sql.js'
import { waitFor } from '../harness/wait.js'

const TENANT_CONFIG = [
  'checkpoint_distance=4194304',
  'compaction_threshold=3',
  'image_creation_threshold=1',
  'compaction_target_size=4194304',
  // Only the commands under test compact and collect garbage, so each one's changes are its own.
  'compaction_period=0s',
  'gc_period=0s',
  'pitr_interval=0s',
]

describe('zenith timeline layers | layer map | timeline checkpoint|compact|gc', () => {
  let c: Cluster
  let main: MainEndpoint

  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await c.ok(...args, '--json')) as T

  /** SQL on main, then wait until the pageserver has ingested all of it. */
  async function write(sql: string): Promise<void> {
    await queryText(main.connstr, sql)
    const [{ lsn }] = await query<{ lsn: string }>(main.connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn')
    await waitFor('the pageserver to ingest the writes', async () => {
      const t = await json<{ last_record_lsn: string }>('timeline', 'show', 'main')
      return parseLsn(t.last_record_lsn) >= parseLsn(lsn) ? true : undefined
    })
  }

  // With a safekeeper, commits do not wait for the pageserver, and it flushes only at checkpoint_distance
  // or when told: what was written stays in its open layer until `timeline checkpoint` flushes it.
  beforeAll(async () => {
    c = await newCluster('layers', {}, [
      '--num-safekeepers',
      '1',
      ...TENANT_CONFIG.flatMap((kv) => ['-c', kv]),
    ])
    main = await startMain(c)
  }, 60_000)

  afterAll(async () => {
    await teardown(c)
  }, 30_000)

  it('checkpoints, compacts and collects garbage, reporting the layers each added and removed', async () => {
    await write('CREATE TABLE t AS SELECT i, md5(i::text) AS m FROM generate_series(1, 2000) i')
    await write('INSERT INTO t SELECT i, md5(i::text) FROM generate_series(2001, 4000) i')
    // The open layer is frozen at checkpoint_distance; a small write after the big ones stays open.
    await write("INSERT INTO t VALUES (0, 'open')")
    const held = await json<BranchLayers>('timeline', 'layers', 'main')
    expect(held.in_memory_layers.length).toBeGreaterThan(0)
    const cp = await json<LayerOperationReport>('timeline', 'checkpoint', 'main')
    expect(cp.operation).toBe('checkpoint')
    expect(cp.before.in_memory_layers.length).toBeGreaterThan(0)
    expect(cp.removed.map((l) => l.kind)).toEqual(cp.before.in_memory_layers.map((l) => l.kind.toLowerCase()))
    expect(cp.added.length).toBeGreaterThan(0)
    expect(cp.added.every((l) => l.kind === 'l0')).toBe(true)
    expect(cp.after.totals.l0.count).toBe(cp.before.totals.l0.count + cp.added.length)
    expect(parseLsn((cp.result as { disk_consistent_lsn: string }).disk_consistent_lsn)).toBeGreaterThan(0)
    const human = await c.ok('timeline', 'checkpoint', 'main')
    expect(human).toMatch(/^\d+ layers added, \d+ removed$/m)
    expect(human).toMatch(/^layer files: \d+ → \d+, /m)

    const first = await json<LayerOperationReport>('timeline', 'compact', 'main', '--force')
    expect(first.result).toMatchObject({ compaction: { inputs: first.before.totals.l0.count } })
    expect(first.removed.filter((l) => l.kind === 'l0').length).toBe(first.before.totals.l0.count)
    expect(first.added.some((l) => l.kind === 'l1')).toBe(true)
    expect(first.added.some((l) => l.kind === 'image')).toBe(true)
    expect(first.after.totals.l0.count).toBe(0)

    // A branch between the first images and the second: GC must keep what it reads.
    await write("UPDATE t SET m = m || 'x' WHERE i % 3 = 0")
    await c.ok('timeline', 'branch', '--branch-name', 'dev')
    await write("UPDATE t SET m = 'y' WHERE i % 2 = 0")
    await c.ok('timeline', 'checkpoint', 'main')
    await c.ok('timeline', 'compact', 'main', '--force')
    await write("UPDATE t SET m = 'z' WHERE i < 100")
    await c.ok('timeline', 'checkpoint', 'main')

    const gc = await json<LayerOperationReport>('timeline', 'gc', 'main', '--gc-horizon', '0')
    const res = gc.result as { cutoff: string; layers_removed: number }
    expect(res.layers_removed).toBeGreaterThan(0)
    expect(gc.removed.length).toBe(res.layers_removed)
    expect(gc.added).toEqual([])
    const show = await json<{ latest_gc_cutoff_lsn: string }>('timeline', 'show', 'main')
    expect(show.latest_gc_cutoff_lsn).toBe(res.cutoff)

    // The cluster has remote storage (init's default directory): every layer file is uploaded soon.
    const layers = await waitFor('every layer file in remote storage', async () => {
      const l = await json<BranchLayers>('timeline', 'layers', 'main')
      return l.historic_layers.every((h) => h.remote) ? l : undefined
    })
    for (const k of ['l0', 'l1', 'image'] as const) expect(layers.totals[k].count, k).toBeGreaterThan(0)
    expect(layers.historic_layers.every((l) => l.layer_file_size > 0)).toBe(true)
    expect(layers.historic_layers.some((l) => l.kind === 'Delta' && l.l0 === false)).toBe(true)
    const table = await c.ok('timeline', 'layers', 'main')
    expect(table).toMatch(/^KIND +KEYS +LSNS +SIZE +STORAGE$/m)
    expect(table).toMatch(/^L1 delta +\S/m)
    expect(table).toMatch(/^image +.* local\+remote$/m)

    const file = path.join(c.dir, 'map.svg')
    const g = await json<LayerMapGeometry & { svg: string }>('layer', 'map', 'main', '--svg', file)
    expect(g.svg).toBe(file)
    const svg = await readFile(file, 'utf8')
    expect(XMLValidator.validate(svg)).toBe(true)
    const rects = svg.match(/<rect data-kind="/g) ?? []
    expect(rects.length).toBe(layers.historic_layers.length + layers.in_memory_layers.length)
    expect(g.rects.length).toBe(rects.length)
    expect(svg).toContain('data-marker="gc_cutoff"')
    expect(svg).toContain(`gc cutoff ${res.cutoff}`)
    expect(svg).toContain('data-marker="branch"')

    const text = (await c.ok('layer', 'map', 'main', '--width', '80', '--height', '20')).split('\n')
    expect(text).toHaveLength(20)
    expect(text.every((l) => l.length <= 80)).toBe(true)
    expect(text.some((l) => l.includes('◂ gc cutoff'))).toBe(true)
    expect(text.some((l) => l.includes('◂ branch dev'))).toBe(true)
  }, 90_000)

  it('refuses an unknown branch and a width of 0 with one line and a non-zero exit', async () => {
    for (const args of [
      ['timeline', 'layers', 'nope'],
      ['timeline', 'checkpoint', 'nope'],
      ['layer', 'map', 'nope'],
    ]) {
      const r = await c.zenith(...args)
      expect(r.exitCode, args.join(' ')).not.toBe(0)
      expect(r.stderr.split('\n')[0]).toMatch(
        /^Error: unknown branch "nope" in tenant [0-9a-f]{32}; branches: main/,
      )
    }
    const w = await c.zenith('layer', 'map', 'main', '--width', '0')
    expect(w.exitCode).not.toBe(0)
    expect(w.stderr.split('\n')[0]).toBe(
      'Error: a layer map 0 columns wide is too small: it needs at least 40',
    )
    const j = await c.zenith('layer', 'map', 'main', '--width', '0', '--json')
    expect(JSON.parse(j.stdout).error.kind).toBe('user_input')
    const missing = await c.zenith('layer', 'map', 'main', '--svg', path.join(c.dir, 'no', 'such', 'x.svg'))
    expect(missing.exitCode).not.toBe(0)
    expect(missing.stderr.split('\n')[0]).toMatch(
      /^Error: cannot write .*x\.svg: directory .* does not exist$/,
    )
  }, 30_000)
})
