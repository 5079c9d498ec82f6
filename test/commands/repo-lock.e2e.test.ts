/**
 * Commands that change one repo dir at the same time take turns: the built CLI, twelve processes at
 * once, then a lock left by a killed command and one held by a live process.
 */
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cluster, newCluster, runZenith, teardown } from '../harness/cli.js'

describe('the repo-dir lock', () => {
  let c: Cluster

  beforeAll(async () => {
    c = await newCluster('lock')
    await c.ok('start')
  })
  afterAll(() => teardown(c))

  it('lands six pg create and six timeline branch run at once, each endpoint on its own port', async () => {
    const six = [1, 2, 3, 4, 5, 6]
    const results = await Promise.all([
      ...six.map((i) => c.zenith('pg', 'create', 'main', '--name', `e${i}`)),
      ...six.map((i) => c.zenith('timeline', 'branch', '--branch-name', `b${i}`)),
    ])
    for (const r of results) expect(r.stderr.replace(/^waiting for the lock.*\n?/gm, '')).toBe('')
    expect(results.map((r) => r.exitCode)).toEqual(Array(12).fill(0))
    expect(
      results.some((r) => /^waiting for the lock on .*: held by pid \d+ \(zenith /m.test(r.stderr)),
    ).toBe(true)

    const endpoints = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string; port: number }[]
    expect(endpoints.map((e) => e.name).sort()).toEqual(six.map((i) => `e${i}`))
    expect(new Set(endpoints.map((e) => e.port)).size).toBe(6)
    const branches = JSON.parse(await c.ok('timeline', 'list', '--json')) as { branch: string }[]
    expect(branches.map((b) => b.branch).sort()).toEqual(['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'main'])
  })

  it('breaks a lock whose holder is gone', async () => {
    const dead = {
      pid: 2 ** 22 + 17,
      command: 'zenith pg create main --name x',
      since: new Date().toISOString(),
    }
    writeFileSync(path.join(c.repo, 'lock'), JSON.stringify(dead))
    const r = await c.zenith('pg', 'create', 'main', '--name', 'after-crash')
    expect(r).toMatchObject({ exitCode: 0, stderr: '' })
  })

  it('fails after its timeout naming the holder, in text and in JSON', async () => {
    const live = { pid: process.pid, command: 'zenith pg start main', since: '2026-12-01T10:00:00.000Z' }
    const lockFile = path.join(c.repo, 'lock')
    writeFileSync(lockFile, JSON.stringify(live))
    const impatient = (...args: string[]) =>
      runZenith([...args, '--repo-dir', c.repo], { ZENITH_LOCK_TIMEOUT_MS: '500' })
    try {
      const slow = await impatient('pg', 'create', 'main', '--name', 'late')
      expect(slow.exitCode).toBe(1)
      expect(slow.stderr).toMatch(
        new RegExp(
          `^Error: the repo dir .* is locked by pid ${process.pid} \\(zenith pg start main\\) since 2026-12-01T10:00:00.000Z$`,
          'm',
        ),
      )
      expect(slow.stderr).toMatch(/^Hint: waited \d+ s; let that command finish/m)
      const json = await impatient('timeline', 'branch', '--branch-name', 'late', '--json')
      expect(json.exitCode).toBe(1)
      expect(JSON.parse(json.stdout)).toMatchObject({
        error: { kind: 'timeout', message: expect.stringContaining(`locked by pid ${process.pid}`) },
      })
    } finally {
      rmSync(lockFile, { force: true })
    }
    const endpoints = JSON.parse(await c.ok('pg', 'list', '--json')) as { name: string }[]
    expect(endpoints.map((e) => e.name)).not.toContain('late')
  })
})
