/** WAL that zenith writes must be WAL that Postgres' own reader accepts. */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { formatLsn, walFileName } from '../../src/postgres/lsn.js'
import { RM_XLOG_ID, XLOG_NOOP, XLOG_SWITCH } from '../../src/postgres/rmgr.js'
import { WalWriter } from '../../src/postgres/wal-writer.js'
import { withTempDir } from '../harness/postgres.js'
import { runWaldump } from '../harness/waldump.js'

const SEG = 1 << 20

describe('WalWriter', () => {
  it('writes segments pg_waldump reads record by record, across pages and segments', async () => {
    await withTempDir(async (dir) => {
      const segNo = 5
      const w = new WalWriter({
        startLsn: segNo * SEG + 0x1a8,
        segmentSize: SEG,
        timeline: 1,
        systemId: 7n,
        prevLsn: 0,
      })
      const lsns: number[] = []
      const noop = (size: number) => ({
        xid: 0,
        info: XLOG_NOOP,
        rmid: RM_XLOG_ID,
        blocks: [],
        mainData: Buffer.alloc(size, 1),
      })
      for (let i = 0; i < 300; i++) lsns.push(w.append(noop(37 + ((i * 977) % 9000))))
      lsns.push(
        w.append({ xid: 0, info: XLOG_SWITCH, rmid: RM_XLOG_ID, blocks: [], mainData: Buffer.alloc(0) }),
      )
      lsns.push(w.append(noop(100)))
      const bytes = w.bytes()
      const segments = Math.ceil(bytes.length / SEG)
      for (let s = 0; s < segments; s++) {
        const seg = Buffer.alloc(SEG)
        bytes.copy(seg, 0, s * SEG, (s + 1) * SEG)
        await writeFile(path.join(dir, walFileName(1, segNo + s, SEG)), seg)
      }
      expect(segments).toBeGreaterThan(1)
      const records = await runWaldump(dir, formatLsn(segNo * SEG))
      expect(records.map((r) => r.lsn)).toEqual(lsns.map(formatLsn))
      expect(records[1].prev).toBe(formatLsn(lsns[0]))
      expect(records.at(-2)?.type).toBe('SWITCH')
    })
  })
})
