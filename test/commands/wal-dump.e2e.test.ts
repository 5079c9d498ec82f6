/** `zenith wal dump` as a user runs it: the built CLI, real files, pg_waldump as the reference. */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseLsn } from '../../src/postgres/lsn.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { makeTempDir, pgBin } from '../harness/postgres.js'

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/run.js')
const fx = loadWalFixture()

function zenith(...args: string[]) {
  return execa('node', [BIN, ...args], { reject: false, maxBuffer: 256 * 1024 * 1024 })
}

function waldump(...args: string[]) {
  return execa(pgBin('pg_waldump'), ['-p', fx.dir, '-s', fx.start, '-e', fx.end, ...args], { reject: false })
}

describe('zenith wal dump', () => {
  let tmp: string

  beforeAll(async () => {
    tmp = await makeTempDir('zenith-e2e-')
  })

  afterAll(async () => {
    const { rm } = await import('node:fs/promises')
    await rm(tmp, { recursive: true, force: true })
  })

  it("prints pg_waldump's line for every record", async () => {
    const [ours, theirs] = await Promise.all([
      zenith('wal', 'dump', '--path', fx.dir, '--start', fx.start, '--end', fx.end),
      waldump(),
    ])
    expect(ours.exitCode).toBe(0)
    const got = ours.stdout.split('\n')
    const want = theirs.stdout.split('\n')
    expect(got.length).toBe(fx.records.length)
    expect(got.length).toBe(want.length)
    for (let i = 0; i < got.length; i++) {
      // pg_waldump adds each rmgr's own description after the record type; we print the rest verbatim.
      const type = /^(.*desc: \S+)/.exec(want[i])![1]
      const blocks = want[i].indexOf(', blkref #0')
      expect(got[i]).toBe(type + (blocks >= 0 ? want[i].slice(blocks) : ''))
    }
    expect(ours.stderr).toBe(`${fx.records.length} records up to ${fx.end}`)
  })

  it('prints one JSON object per record with --json', async () => {
    const res = await zenith('wal', 'dump', '--path', fx.dir, '--json')
    expect(res.exitCode).toBe(0)
    const lines = res.stdout.split('\n').map((l) => JSON.parse(l))
    expect(lines.length).toBe(fx.records.length)
    const heapInsert = fx.records.findIndex((r) => r.rmgr === 'Heap' && r.type === 'INSERT')
    const want = fx.records[heapInsert]
    expect(lines[heapInsert]).toEqual({
      lsn: want.lsn,
      prev: want.prev,
      rmgr: 'Heap',
      type: 'INSERT',
      rec_len: want.recLen,
      tot_len: want.totLen,
      xid: want.xid,
      blocks: want.blocks.map((b) => ({
        id: b.id,
        spc: b.spc,
        db: b.db,
        rel: b.rel,
        fork: b.fork,
        blk: b.blk,
        image: b.image,
        apply: b.apply,
      })),
    })
    // Without --end the stop at the end of the fixture is reported, not treated as a failure.
    expect(res.stderr).toMatch(/end of WAL at 0\/A00000: WAL segment 00000001000000000000000A .* is not in/)
  })

  it('prints the same statistics table as pg_waldump --stats=record', async () => {
    const [ours, theirs] = await Promise.all([
      zenith('wal', 'dump', '--path', fx.dir, '--start', fx.start, '--end', fx.end, '--stats'),
      waldump('--stats=record'),
    ])
    expect(ours.exitCode).toBe(0)
    expect(ours.stdout).toBe(theirs.stdout.split('\n').slice(1).join('\n'))
    const json = await zenith(
      'wal',
      'dump',
      '--path',
      fx.dir,
      '--start',
      fx.start,
      '--end',
      fx.end,
      '--stats',
      '--json',
    )
    const stats = JSON.parse(json.stdout)
    expect(stats.records).toBe(fx.records.length)
    expect(stats.combined_bytes).toBe(fx.records.reduce((n, r) => n + r.totLen, 0))
  })

  it('starts at the first record at or after --start', async () => {
    const target = fx.records[100]
    const mid = parseLsn(target.lsn) - 1
    const res = await zenith('wal', 'dump', '--path', fx.dir, '--start', `0/${mid.toString(16)}`, '--json')
    expect(JSON.parse(res.stdout.split('\n')[0]).lsn).toBe(target.lsn)
  })

  it('refuses bad input with one clear line and a non-zero exit code', async () => {
    const notWal = path.join(tmp, 'not-wal')
    await mkdir(notWal)
    await writeFile(path.join(notWal, '000000010000000000000001'), Buffer.alloc(70000, 7))
    const cases: [string[], RegExp][] = [
      [['--path', path.join(tmp, 'missing')], /^Error: WAL directory .*missing does not exist$/],
      [['--path', notWal], /^Error: .*000000010000000000000001 is not a PostgreSQL 15 WAL segment/],
      [
        ['--path', fx.dir, '--start', '12:34'],
        /^Error: Parsing --start: invalid LSN "12:34": expected two hex numbers/,
      ],
      [
        ['--path', fx.dir, '--start', '0/100000'],
        /^Error: start 0\/100000 is in segment 000000010000000000000001, which is not in/,
      ],
      [
        ['--path', fx.dir, '--end', '0/B00000'],
        /^Error: WAL stops before --end 0\/B00000: WAL segment 00000001000000000000000A/,
      ],
      [[], /^Error: Exactly one of the following must be provided: --branch, --path$/],
    ]
    for (const [args, message] of cases) {
      const res = await zenith('wal', 'dump', ...args)
      expect(res.exitCode, args.join(' ')).not.toBe(0)
      const [first, ...rest] = res.stderr.split('\n')
      expect(first, args.join(' ')).toMatch(message)
      for (const l of rest) expect(l, args.join(' ')).toMatch(/^Hint: /)
    }
  })

  it('fails on a CRC mismatch in the middle of the WAL, with or without --end', async () => {
    const damaged = path.join(tmp, 'damaged')
    await cp(fx.dir, damaged, { recursive: true })
    const victim = fx.records.find((r) => r.lsn.startsWith('0/8') && r.totLen > 1000)!
    const at = parseLsn(victim.lsn)
    const file = path.join(damaged, '000000010000000000000008')
    const seg = await readFile(file)
    seg[(at % fx.segmentSize) + 100] ^= 0xff
    await writeFile(file, seg)
    const withEnd = await zenith('wal', 'dump', '--path', damaged, '--end', fx.end)
    expect(withEnd.exitCode).toBe(1)
    expect(withEnd.stderr).toBe(
      `Error: WAL stops before --end ${fx.end}: incorrect resource manager data checksum in record at ${victim.lsn}` +
        ` (last record at ${fx.records[fx.records.indexOf(victim) - 1].lsn})`,
    )
    const withoutEnd = await zenith('wal', 'dump', '--path', damaged)
    expect(withoutEnd.exitCode).toBe(1)
    expect(withoutEnd.stderr).toMatch(
      new RegExp(
        `^Error: damaged WAL at ${victim.lsn}: incorrect resource manager data checksum .* valid WAL follows`,
      ),
    )
    // Everything before the damage was still printed.
    expect(withoutEnd.stdout.split('\n')).toHaveLength(fx.records.indexOf(victim))
  })
})
