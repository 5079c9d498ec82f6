import { describe, expect, it } from 'vitest'
import { ReplicationCommandError } from '../../src/protocol/errors.js'
import {
  formatWalSegmentSize,
  parseReplicationCommand,
  replicationMode,
} from '../../src/protocol/replication-commands.js'

function refusal(sql: string): { code: string; message: string } {
  try {
    parseReplicationCommand(sql)
  } catch (err) {
    if (err instanceof ReplicationCommandError) return { code: err.code, message: err.message }
    throw err
  }
  throw new Error(`${sql} was accepted`)
}

describe('parseReplicationCommand', () => {
  it('parses the commands pg_receivewal and walreceivers send, as they send them', () => {
    expect(parseReplicationCommand('IDENTIFY_SYSTEM')).toEqual({ kind: 'identifySystem' })
    expect(parseReplicationCommand('SHOW wal_segment_size')).toEqual({
      kind: 'show',
      name: 'wal_segment_size',
    })
    expect(parseReplicationCommand('SHOW data_directory_mode')).toEqual({
      kind: 'show',
      name: 'data_directory_mode',
    })
    expect(parseReplicationCommand('TIMELINE_HISTORY 2')).toEqual({ kind: 'timelineHistory', timeline: 2 })
    expect(parseReplicationCommand('START_REPLICATION 0/700000 TIMELINE 1')).toEqual({
      kind: 'startReplication',
      slot: null,
      start: 0x700000,
      timeline: 1,
    })
    expect(parseReplicationCommand('START_REPLICATION PHYSICAL 0/16B3748')).toEqual({
      kind: 'startReplication',
      slot: null,
      start: 0x16b3748,
      timeline: null,
    })
    // pg_receivewal 15 quotes the slot name; a walreceiver's primary_slot_name comes unquoted.
    expect(parseReplicationCommand('START_REPLICATION SLOT "My""Slot" 1/FF000000 TIMELINE 3')).toEqual({
      kind: 'startReplication',
      slot: 'My"Slot',
      start: 0x1_ff00_0000,
      timeline: 3,
    })
    expect(parseReplicationCommand('START_REPLICATION SLOT Standby_1 PHYSICAL FF/0')).toMatchObject({
      slot: 'standby_1',
      start: 0xff_0000_0000,
    })
  })

  it('takes keywords in any case, spaces anywhere and one trailing semicolon', () => {
    expect(parseReplicationCommand('  identify_system ;  ')).toEqual({ kind: 'identifySystem' })
    expect(parseReplicationCommand('show WAL_SEGMENT_SIZE;')).toEqual({
      kind: 'show',
      name: 'wal_segment_size',
    })
    expect(parseReplicationCommand('Show "Odd.Name"')).toEqual({ kind: 'show', name: 'Odd.Name' })
    expect(parseReplicationCommand('SHOW neon.Timeline_Id')).toEqual({
      kind: 'show',
      name: 'neon.timeline_id',
    })
    expect(parseReplicationCommand('start_replication\n slot s physical\t0/0 timeline 1;')).toEqual({
      kind: 'startReplication',
      slot: 's',
      start: 0,
      timeline: 1,
    })
    expect(refusal('IDENTIFY_SYSTEM;;').code).toBe('42601')
  })

  it('refuses malformed commands as syntax errors that say what was expected', () => {
    expect(refusal('START_REPLICATION')).toEqual({
      code: '42601',
      message: 'syntax error in START_REPLICATION: expected a start position X/X, got the end of the command',
    })
    expect(refusal('START_REPLICATION 0/XYZ').message).toMatch(/expected a start position X\/X, got "0\/XYZ"/)
    expect(refusal('START_REPLICATION 200000/0').message).toMatch(/start position/)
    expect(refusal('START_REPLICATION SLOT 0/1').message).toMatch(/expected a slot name, got "0\/1"/)
    expect(refusal('START_REPLICATION SLOT "" 0/1').message).toMatch(/slot name/)
    expect(refusal('START_REPLICATION 0/1 TIMELINE').message).toMatch(/expected a timeline number/)
    expect(refusal('START_REPLICATION 0/1 TIMELINE 0')).toEqual({
      code: '42601',
      message: 'invalid timeline 0',
    })
    expect(refusal('TIMELINE_HISTORY 4294967296').message).toBe('invalid timeline 4294967296')
    expect(refusal('TIMELINE_HISTORY x').code).toBe('42601')
    expect(refusal('IDENTIFY_SYSTEM now').message).toMatch(/expected the end of the command, got "now"/)
    expect(refusal('SHOW').message).toMatch(/expected a parameter name/)
    expect(refusal('SHOW a b').code).toBe('42601')
  })

  it('refuses SQL and the commands this walsender does not serve as unsupported', () => {
    for (const sql of ['SELECT 1', '', '   ', 'identify', '"IDENTIFY_SYSTEM"', '0/1']) {
      expect(refusal(sql)).toEqual({
        code: '0A000',
        message: 'cannot execute SQL commands in WAL sender for physical replication',
      })
    }
    expect(refusal('BASE_BACKUP (CHECKPOINT fast)')).toEqual({
      code: '0A000',
      message: 'BASE_BACKUP is not supported by this server',
    })
    expect(refusal('READ_REPLICATION_SLOT s').code).toBe('0A000')
    expect(refusal('CREATE_REPLICATION_SLOT s PHYSICAL').code).toBe('0A000')
    expect(refusal('START_REPLICATION SLOT s LOGICAL 0/0').message).toMatch(
      /logical replication is not supported/,
    )
  })
})

describe('replicationMode', () => {
  it('reads the replication startup parameter as Postgres does', () => {
    expect(replicationMode({ user: 'u' })).toBeNull()
    for (const v of ['true', 'on', 'YES', '1']) expect(replicationMode({ replication: v })).toBe('physical')
    for (const v of ['false', 'off', 'no', '0']) expect(replicationMode({ replication: v })).toBeNull()
    expect(replicationMode({ replication: 'database' })).toBe('logical')
    expect(() => replicationMode({ replication: 'maybe' })).toThrow(
      /invalid value for parameter "replication": "maybe"/,
    )
  })
})

describe('formatWalSegmentSize', () => {
  it('prints sizes as SHOW wal_segment_size does', () => {
    expect(formatWalSegmentSize(1 << 20)).toBe('1MB')
    expect(formatWalSegmentSize(16 << 20)).toBe('16MB')
    expect(formatWalSegmentSize(512 << 20)).toBe('512MB')
    expect(formatWalSegmentSize(1 << 30)).toBe('1GB')
    expect(() => formatWalSegmentSize(1000)).toThrow(/not a whole number of MB/)
  })
})
