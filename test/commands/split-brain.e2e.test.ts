/**
 * Split brain: two pageservers both attached to one tenant, pageserver 1 with generation g, which nobody
 * told it is over, and pageserver 2 with g+1 from the storage controller. Pageserver 1 goes on ingesting,
 * flushing, uploading and compacting; the controller's validation tells it its generation is stale, so
 * its remote_consistent_lsn stays where it was and it deletes nothing, and since every key it writes
 * carries its own generation, no object of g+1 changes: pageserver 2's index stays whole.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { safekeeperConfigOf } from '../../src/control/layout.js'
import { storageControllerConfigOf } from '../../src/control/storage-controller-process.js'
import { decodeIndexPart } from '../../src/engine/index-part.js'
import { formatGeneration, layerKey } from '../../src/engine/remote-layout.js'
import { TEMP_SUFFIX } from '../../src/lib/durable-fs.js'
import { formatHostPort } from '../../src/lib/host-port.js'
import { parseLsn } from '../../src/postgres/lsn.js'
import { type Cluster, type MainEndpoint, newCluster, startMain, teardown } from '../harness/cli.js'
import { query } from '../harness/sql.js'
import { waitFor } from '../harness/wait.js'

let c: Cluster
let main: MainEndpoint

beforeAll(async () => {
  c = await newCluster('split-brain', {}, ['--num-safekeepers', '1'])
  main = await startMain(c)
  await c.ok('pageserver', 'start', '2')
  await query(
    main.connstr,
    'CREATE TABLE t AS SELECT i, md5(i::text) AS pad FROM generate_series(1, 20000) i',
  )
}, 120_000)

afterAll(() => teardown(c), 60_000)

async function http<T>(port: number, method: string, route: string, body?: unknown): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${text}`)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

/**
 * Every object in the remote storage directory, key → sha256 of its bytes; temp files of uploads in
 * flight are not objects yet.
 */
function objects(root: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name.includes(TEMP_SUFFIX)) continue
      const p = path.join(dir, name)
      try {
        if (statSync(p).isDirectory()) walk(p)
        else out.set(path.relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'))
      } catch (err) {
        // Gone as we walked: renamed from a temp name, or deleted by pageserver 1 before it knew it is stale.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }
  walk(root)
  return out
}

describe('split brain', () => {
  it('refuses the stale pageserver remote_consistent_lsn and deletions, and it never touches the newer generation', async () => {
    const remote = path.join(c.repo, 'remote_storage')
    const tl = `/v1/tenant/${main.tenantId}/timeline/${main.timelineId}`
    const ps1 = c.http
    const ps2 = c.http + 1
    const sc = storageControllerConfigOf(c.repo).listenHttpAddr.port
    await http(ps1, 'PUT', `${tl}/checkpoint`)
    const frozen = await waitFor(
      'pageserver 1 to have everything in remote storage',
      async () => {
        const t = await http<{ remote_consistent_lsn: string; disk_consistent_lsn: string }>(ps1, 'GET', tl)
        return t.remote_consistent_lsn === t.disk_consistent_lsn ? t.remote_consistent_lsn : undefined
      },
      30_000,
    )

    // The controller hands the tenant to pageserver 2 with g+1; pageserver 1 is not told.
    const { generation } = await http<{ generation: number }>(
      sc,
      'POST',
      `/control/v1/tenant/${main.tenantId}/attach`,
      {
        node_id: 2,
      },
    )
    await http(ps2, 'PUT', `/v1/tenant/${main.tenantId}/location_config`, {
      mode: 'AttachedSingle',
      generation,
    })
    // Pageserver 2 streams a while, uploads at g+1, and stops streaming: from here on g+1 is its alone.
    const sk = safekeeperConfigOf(c.repo, 1)
    await http(ps2, 'PUT', `${tl}/wal_receiver`, {
      safekeepers: [{ id: 1, pg: formatHostPort(sk.listenPgAddr), http: formatHostPort(sk.listenHttpAddr) }],
    })
    await query(main.connstr, 'INSERT INTO t SELECT i, md5(i::text) FROM generate_series(20001, 30000) i')
    const [{ lsn }] = await query<{ lsn: string }>(main.connstr, 'SELECT pg_current_wal_flush_lsn() AS lsn')
    await waitFor(
      'pageserver 2 to stream the insert',
      async () =>
        parseLsn((await http<{ last_record_lsn: string }>(ps2, 'GET', tl)).last_record_lsn) >= parseLsn(lsn)
          ? true
          : undefined,
      30_000,
    )
    await http(ps2, 'PUT', `${tl}/wal_receiver`, { wal_source_connstr: null })
    await http(ps2, 'PUT', `${tl}/checkpoint?compact=false`)
    const { disk_consistent_lsn: ps2Lsn } = await http<{ disk_consistent_lsn: string }>(ps2, 'GET', tl)
    const suffix = `-${formatGeneration(generation)}`
    const indexKey = `tenants/${main.tenantId}/timelines/${main.timelineId}/index_part.json${suffix}`
    const readIndex = () => {
      try {
        return decodeIndexPart(readFileSync(path.join(remote, indexKey)), indexKey)
      } catch {
        return null
      }
    }
    // Its uploads run in the background: done once its g+1 index covers all it has.
    await waitFor(
      "pageserver 2's index at g+1 to cover all it has",
      async () => (readIndex()?.metadata.diskConsistentLsn === parseLsn(ps2Lsn) ? true : undefined),
      30_000,
    )
    const newer = [...objects(remote)].filter(([k]) => k.endsWith(suffix))
    expect(newer.length).toBeGreaterThan(1)

    // Pageserver 1 goes on: more WAL, flushes, uploads, and a compaction that drops layers locally.
    for (let round = 0; round < 3; round++) {
      await query(main.connstr, `UPDATE t SET pad = md5(pad) WHERE i % 3 = ${round}`)
      await http(ps1, 'PUT', `${tl}/checkpoint`)
    }
    await http(ps1, 'PUT', `${tl}/compact?force_l0_compaction=true&force_image_layer_creation=true`)
    const log1 = path.join(c.repo, 'pageserver', 'pageserver.log')
    // Both refusals: the index upload's (remote_consistent_lsn stays) and, after compaction's uploads,
    // the deletion's.
    await waitFor(
      'pageserver 1 to refuse, as a stale generation, to move remote_consistent_lsn and to delete',
      async () => {
        const text = readFileSync(log1, 'utf8')
        return text.includes('remote_consistent_lsn stays') &&
          /not deleting remote layers: the generation is stale/.test(text)
          ? true
          : undefined
      },
      30_000,
    )
    const after = await http<{ remote_consistent_lsn: string; disk_consistent_lsn: string }>(ps1, 'GET', tl)
    expect(parseLsn(after.disk_consistent_lsn)).toBeGreaterThan(parseLsn(frozen))
    expect(after.remote_consistent_lsn).toBe(frozen)

    // Nothing of g+1 changed, and everything pageserver 2's index lists is still there.
    const now = objects(remote)
    for (const [k, sha] of newer) expect(now.get(k), k).toBe(sha)
    for (const [name, l] of Object.entries(readIndex()!.layers)) {
      const key = layerKey(main.tenantId, main.timelineId, name, l.generation)
      expect(now.has(key), key).toBe(true)
    }
  }, 180_000)
})
