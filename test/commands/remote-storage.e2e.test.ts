/**
 * `zenith init --remote-storage` as a user runs it: the built CLI writes remote_storage into
 * pageserver.toml, the pageserver opens it (a real S3-compatible server, moto_server, for the bucket), and
 * `status` says where it is. init makes the default tenant with initdb, so PostgreSQL 15 is needed.
 */
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, runZenith, teardown } from '../harness/cli.js'
import { MOTO_ENV, type Moto, startMoto } from '../harness/moto.js'
import { makeTempDir } from '../harness/postgres.js'

let moto: Moto
beforeAll(async () => {
  moto = await startMoto()
}, 40_000)
afterAll(async () => {
  await moto?.stop()
})

describe('zenith init --remote-storage', () => {
  let c: Cluster | undefined
  afterAll(() => teardown(c))

  it('writes a bucket into pageserver.toml, the pageserver opens it, and status shows where it is', async () => {
    c = await newCluster('remote-s3', MOTO_ENV, [
      '--remote-storage',
      `s3://${moto.bucket}/e2e/cluster`,
      '--s3-endpoint',
      moto.endpoint,
      '--s3-region',
      'us-east-1',
    ])
    const toml = await readFile(path.join(c.repo, 'pageserver', 'pageserver.toml'), 'utf8')
    expect(toml).toContain(
      `remote_storage = { bucket = "${moto.bucket}", prefix = "e2e/cluster", region = "us-east-1", endpoint = "${moto.endpoint}" }\n`,
    )
    const status = JSON.parse(await c.ok('status', '--json'))
    expect(status.pageservers[0].remote_storage).toEqual({
      kind: 's3',
      location: `s3://${moto.bucket}/e2e/cluster`,
      endpoint: moto.endpoint,
      region: 'us-east-1',
    })
    expect(await c.ok('pageserver', 'status')).toContain(
      `remote storage s3://${moto.bucket}/e2e/cluster (endpoint ${moto.endpoint}, region us-east-1)`,
    )
    // init ran the pageserver: it opened the bucket and found it usable.
    const log = await readFile(path.join(c.repo, 'pageserver', 'pageserver.log'), 'utf8')
    expect(log).toContain(`s3://${moto.bucket}/e2e/cluster`)
    expect(log).not.toContain('remote storage is not usable')
  })

  it('defaults to the directory remote_storage in the repo dir', async () => {
    const d = await newCluster('remote-default')
    try {
      const status = JSON.parse(await d.ok('status', '--json'))
      expect(status.pageservers[0].remote_storage).toEqual({
        kind: 'local',
        location: path.join(d.repo, 'remote_storage'),
      })
      expect(await d.ok('status')).toMatch(
        new RegExp(`remote storage\\s+${path.join(d.repo, 'remote_storage')}\\n`),
      )
    } finally {
      await teardown(d)
    }
  })

  it('refuses S3 flags without an S3 location, and a location that is neither, before making anything', async () => {
    const dir = await makeTempDir('zenith-e2e-remote-bad-')
    try {
      for (const [args, message] of [
        [
          ['--s3-endpoint', moto.endpoint],
          '--s3-endpoint and --s3-region need --remote-storage s3://bucket/prefix',
        ],
        [
          ['--remote-storage', 'gs://b12/p'],
          '--remote-storage "gs://b12/p" is neither a directory nor s3://bucket/prefix',
        ],
      ] as const) {
        const repo = path.join(dir, `bad${args[0]}`)
        const r = await runZenith(['init', '--repo-dir', repo, ...args, '--json'])
        expect(r.exitCode).not.toBe(0)
        expect(JSON.parse(r.stdout).error).toMatchObject({ kind: 'user_input', message })
        await expect(readFile(path.join(repo, 'pageserver', 'pageserver.toml'))).rejects.toThrow(/ENOENT/)
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
