/**
 * The walsender primitives against stock pg_receivewal: a tiny walsender (test/harness/walsender.ts) serves
 * the committed WAL fixture, pg_receivewal streams it into a directory, and the files must be the fixture's
 * bytes. Postgres' own receivers are the judges of our side of the protocol here.
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatLsn } from '../../src/postgres/lsn.js'
import { runPgBin } from '../../src/postgres/pg-bin.js'
import { loadWalFixture } from '../fixtures/wal/fixture.js'
import { withTempDir } from '../harness/postgres.js'
import { startTestWalSender, type TestWalSender } from '../harness/walsender.js'

const fixture = loadWalFixture()

describe('walsender primitives with pg_receivewal', () => {
  let sender: TestWalSender

  beforeAll(async () => {
    sender = await startTestWalSender(fixture.dir)
  })

  afterAll(async () => {
    await sender?.close()
  })

  it('streams the fixture into pg_receivewal byte for byte, with --synchronous flush reports', async () => {
    await withTempDir(async (dir) => {
      // pg_receivewal stops once it has received WAL beyond --endpos, so the last byte is the end.
      const endpos = formatLsn(sender.end - 1)
      const { stderr } = await runPgBin(
        'pg_receivewal',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(sender.port),
          '-U',
          'postgres',
          '-w',
          '-D',
          dir,
          '--no-loop',
          '--synchronous',
          '-E',
          endpos,
          '-v',
        ],
        { timeoutMs: 60_000 },
      )
      expect(stderr).toContain('starting log streaming at 0/700000 (timeline 1)')
      // What a stock pg_receivewal 15 sends; dbname is absent (physical), timeline 1 needs no history.
      expect(sender.commands).toEqual([
        'SHOW data_directory_mode',
        'IDENTIFY_SYSTEM',
        'SHOW wal_segment_size',
        'IDENTIFY_SYSTEM',
        'IDENTIFY_SYSTEM',
        `START_REPLICATION ${fixture.start} TIMELINE 1`,
      ])
      // Our walsender released WAL only as pg_receivewal acknowledged it, so reaching the end proves the
      // status updates arrived and parsed.
      expect(sender.flushLsn).toBe(sender.end)
      const flushes = sender.statuses.map((s) => s.flush)
      expect(flushes).toEqual([...flushes].sort((x, y) => x - y))
      // --synchronous flushes before it reports, and no standby applies anything.
      for (const s of sender.statuses) {
        expect(s.write).toBe(s.flush)
        expect(s.apply).toBe(0)
      }
      // pg_receivewal stops right after the XLogData that passes --endpos, without reporting it, so the last
      // report is the flush position that released the last step of WAL.
      expect(flushes.at(-1)).toBeGreaterThanOrEqual(sender.end - sender.step)
      expect(flushes.at(-1)).toBeLessThan(sender.end)
      expect(new Set(flushes).size).toBeGreaterThan(10)
      expect(sender.errors).toEqual([])
      expect((await readdir(dir)).sort()).toEqual(fixture.segments)
      for (const name of fixture.segments) {
        expect(
          (await readFile(path.join(dir, name))).equals(await readFile(path.join(fixture.dir, name))),
        ).toBe(true)
      }
    })
  })
})
