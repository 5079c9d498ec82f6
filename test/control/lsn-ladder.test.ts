import { describe, expect, it } from 'vitest'
import { lsnLadder } from '../../src/control/lsn-ladder.js'

const pageserver = {
  last_record_lsn: '0/3000',
  disk_consistent_lsn: '0/2000',
  remote_consistent_lsn: '0/2000',
  latest_gc_cutoff_lsn: '0/1000',
  lag_seconds: { last_record: 0.5, disk_consistent: 12, remote_consistent: 12 },
}

describe('lsnLadder', () => {
  it('measures bytes against the compute flush and takes seconds from the process holding each step', () => {
    const rungs = lsnLadder({
      compute: { insert_lsn: '0/4100', flush_lsn: '0/4000' },
      safekeepers: [
        { id: 1, flush_lsn: '0/4000', lag_seconds: { flush: 0, commit: 0.1 } },
        { id: 2, flush_lsn: null },
      ],
      commit: { lsn: '0/3F00', lag_seconds: 0.1 },
      pageserver,
    })
    expect(rungs.map((r) => [r.name, r.lsn, r.lag_bytes, r.lag_seconds])).toEqual([
      ['compute_insert', '0/4100', null, 0],
      ['compute_flush', '0/4000', 0, 0],
      ['safekeeper_flush', '0/4000', 0, 0],
      ['safekeeper_flush', null, null, null],
      ['commit', '0/3F00', 0x100, 0.1],
      ['last_record', '0/3000', 0x1000, 0.5],
      ['disk_consistent', '0/2000', 0x2000, 12],
      ['remote_consistent', '0/2000', 0x2000, 12],
      ['gc_cutoff', '0/1000', null, null],
    ])
    expect(rungs[2].safekeeper_id).toBe(1)
  })

  it('without a compute, measures against the highest LSN on the ladder', () => {
    const rungs = lsnLadder({ compute: null, safekeepers: [], commit: null, pageserver })
    expect(rungs.map((r) => [r.name, r.lag_bytes])).toEqual([
      ['last_record', 0],
      ['disk_consistent', 0x1000],
      ['remote_consistent', 0x1000],
      ['gc_cutoff', null],
    ])
  })

  it('knows nothing of lag when nothing answered', () => {
    expect(lsnLadder({ compute: null, safekeepers: [], commit: null, pageserver: null })).toEqual([])
  })
})
