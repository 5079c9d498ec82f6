/**
 * What WAL ingest does with every record type PostgreSQL 15 writes, in one place: each is carried by its
 * block images, applied by zenith itself, or has no storage effect — and why. WalIngest dispatches on
 * this table, so a record type missing from it is refused, never silently dropped; docs/postgres-on-zenith.md
 * shows the table as renderRecordCensus() renders it, and a test keeps the two equal and checks that every
 * record type of src/postgres/rmgr.ts has an entry.
 */

import {
  RM_BRIN_ID,
  RM_BTREE_ID,
  RM_CLOG_ID,
  RM_COMMIT_TS_ID,
  RM_DBASE_ID,
  RM_GENERIC_ID,
  RM_GIN_ID,
  RM_GIST_ID,
  RM_HASH_ID,
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_LOGICALMSG_ID,
  RM_MAX_BUILTIN_ID,
  RM_MULTIXACT_ID,
  RM_RELMAP_ID,
  RM_REPLORIGIN_ID,
  RM_SEQ_ID,
  RM_SMGR_ID,
  RM_SPGIST_ID,
  RM_STANDBY_ID,
  RM_TBLSPC_ID,
  RM_XACT_ID,
  RM_XLOG_ID,
  recordTypeName,
  recordTypes,
  rmgrIdIsBuiltin,
  rmgrName,
} from '../postgres/rmgr.js'

/**
 * - `pages`: every change is in the record's block images (wal_consistency_checking = all), which
 *   ingest stores for every record;
 * - `applied`: zenith applies what the record says beyond its block images (`note` says what);
 * - `none`: the record changes nothing a datadir keeps (`note` says why).
 */
export type RecordEffect = 'pages' | 'applied' | 'none'

export interface CensusEntry {
  effect: RecordEffect
  note: string
}

const pages = (note = ''): CensusEntry => ({ effect: 'pages', note })
const applied = (note: string): CensusEntry => ({ effect: 'applied', note })
const none = (note: string): CensusEntry => ({ effect: 'none', note })

const VM_CLEAR = 'page images; clears the VM bits it says it cleared, on a VM page it does not reference'
const COMMIT_NOTE =
  'pg_xact status of the transaction tree; its commit timestamps while track_commit_timestamp is on; ' +
  'the progress of its origin; unlinks the relations it drops'

/** Keyed by rmgr id, then by the record type's name as pg_waldump prints it. */
/**
 * The rmgrs whose changes reach ingest only as the page images wal_consistency_checking adds — those
 * with a rm_mask, which are what wal_consistency_checking accepts: a compute must check every one.
 */
export const CONSISTENCY_CHECKED_RMGRS: ReadonlySet<number> = new Set([
  RM_HEAP_ID,
  RM_HEAP2_ID,
  RM_BTREE_ID,
  RM_HASH_ID,
  RM_GIN_ID,
  RM_GIST_ID,
  RM_SEQ_ID,
  RM_SPGIST_ID,
  RM_BRIN_ID,
  RM_GENERIC_ID,
])

export const RECORD_CENSUS: Readonly<Record<number, Readonly<Record<string, CensusEntry>>>> = {
  [RM_XLOG_ID]: {
    CHECKPOINT_SHUTDOWN: applied(
      'the checkpoint a basebackup starts from: next xid, oid and multixact, oldest ones',
    ),
    CHECKPOINT_ONLINE: applied(
      'the checkpoint a basebackup starts from: next xid, oid and multixact, oldest ones',
    ),
    NOOP: none('redo does nothing'),
    NEXTOID: applied('the next OID of the checkpoint'),
    SWITCH: none('ends a WAL segment early; redo does nothing'),
    BACKUP_END: none('only a server restoring that very backup changes pg_control; a timeline is none'),
    PARAMETER_CHANGE: applied(
      'its eight settings into pg_control; track_commit_timestamp on starts pg_commit_ts at nextXid, off removes it',
    ),
    RESTORE_POINT: none('a name for recovery targets; redo does nothing'),
    FPW_CHANGE: none('redo keeps full_page_writes in memory only'),
    END_OF_RECOVERY: none('redo only checks the timeline it names'),
    FPI_FOR_HINT: pages(),
    FPI: pages(),
    OVERWRITE_CONTRECORD: none('marks where a torn record was replaced; redo only checks it'),
  },
  [RM_XACT_ID]: {
    COMMIT: applied(COMMIT_NOTE),
    PREPARE: applied('the pg_twophase state file'),
    ABORT: applied(
      'pg_xact status of the transaction tree; the progress of its origin; unlinks the relations it drops',
    ),
    COMMIT_PREPARED: applied(`as COMMIT; removes the pg_twophase state file`),
    ABORT_PREPARED: applied('as ABORT; removes the pg_twophase state file'),
    ASSIGNMENT: none('subtransaction parents for pg_subtrans, which Postgres rebuilds at start'),
    INVALIDATION: none('cache invalidations for logical decoding'),
  },
  [RM_SMGR_ID]: {
    CREATE: applied('an empty relation fork'),
    TRUNCATE: applied(
      'main and VM fork sizes, the VM bits past the new end; the FSM, a hint, keeps its pages',
    ),
  },
  [RM_CLOG_ID]: {
    ZEROPAGE: applied('a zeroed pg_xact page'),
    TRUNCATE: applied('removes the pg_xact segments before the cutoff; moves oldestXid of the checkpoint'),
  },
  [RM_DBASE_ID]: {
    CREATE_FILE_COPY: applied('every fork and the relmap of the template database, as of the record'),
    CREATE_WAL_LOG: applied('the database and an empty relation directory; its pages follow as FPI records'),
    DROP: applied('the database and its relations'),
  },
  [RM_TBLSPC_ID]: {
    CREATE: applied('the tablespace, whose directory a basebackup makes in place of the symlink'),
    DROP: applied('forgets the tablespace; its contents were dropped by records of their own'),
  },
  [RM_MULTIXACT_ID]: {
    ZERO_OFF_PAGE: applied('a zeroed pg_multixact/offsets page'),
    ZERO_MEM_PAGE: applied('a zeroed pg_multixact/members page'),
    CREATE_ID: applied('the offset and members of the multixact; next multixact and member offset'),
    TRUNCATE_ID: applied(
      'removes offsets and members segments before the new oldest; moves oldestMulti of the checkpoint',
    ),
  },
  [RM_RELMAP_ID]: {
    UPDATE: applied('the pg_filenode.map file'),
  },
  [RM_STANDBY_ID]: {
    LOCK: none('locks a hot standby must take'),
    RUNNING_XACTS: none('running transactions, for the snapshots of a hot standby'),
    INVALIDATIONS: none('cache invalidations for a hot standby'),
  },
  [RM_HEAP2_ID]: {
    REWRITE: none('logical rewrite mappings for replication slots, which a basebackup does not carry'),
    PRUNE: pages(),
    VACUUM: pages(),
    FREEZE_PAGE: pages(),
    VISIBLE: pages('the VM page and the heap page are both block images'),
    MULTI_INSERT: applied(VM_CLEAR),
    'MULTI_INSERT+INIT': applied(VM_CLEAR),
    LOCK_UPDATED: applied(VM_CLEAR),
    NEW_CID: none('catalog command ids for logical decoding'),
  },
  [RM_HEAP_ID]: {
    INSERT: applied(VM_CLEAR),
    'INSERT+INIT': applied(VM_CLEAR),
    DELETE: applied(VM_CLEAR),
    UPDATE: applied(VM_CLEAR),
    'UPDATE+INIT': applied(VM_CLEAR),
    TRUNCATE: none('tells logical decoding about TRUNCATE; the files change through Storage records'),
    HOT_UPDATE: applied(VM_CLEAR),
    'HOT_UPDATE+INIT': applied(VM_CLEAR),
    HEAP_CONFIRM: pages(),
    LOCK: applied(VM_CLEAR),
    INPLACE: pages(),
  },
  [RM_BTREE_ID]: {
    INSERT_LEAF: pages(),
    INSERT_UPPER: pages(),
    INSERT_META: pages(),
    SPLIT_L: pages(),
    SPLIT_R: pages(),
    INSERT_POST: pages(),
    DEDUP: pages(),
    DELETE: pages(),
    UNLINK_PAGE: pages(),
    UNLINK_PAGE_META: pages(),
    NEWROOT: pages(),
    MARK_PAGE_HALFDEAD: pages(),
    VACUUM: pages(),
    REUSE_PAGE: none('a hot standby conflict with a page about to be reused'),
    META_CLEANUP: pages(),
  },
  [RM_HASH_ID]: Object.fromEntries(recordTypes(RM_HASH_ID).map((t) => [t.name, pages()])),
  [RM_GIN_ID]: Object.fromEntries(recordTypes(RM_GIN_ID).map((t) => [t.name, pages()])),
  [RM_GIST_ID]: {
    PAGE_UPDATE: pages(),
    DELETE: pages(),
    PAGE_REUSE: none('a hot standby conflict with a page about to be reused'),
    PAGE_SPLIT: pages(),
    PAGE_DELETE: pages(),
    ASSIGN_LSN: none('only moves the LSN on; redo does nothing'),
  },
  [RM_SEQ_ID]: { LOG: pages() },
  [RM_SPGIST_ID]: Object.fromEntries(recordTypes(RM_SPGIST_ID).map((t) => [t.name, pages()])),
  [RM_BRIN_ID]: Object.fromEntries(recordTypes(RM_BRIN_ID).map((t) => [t.name, pages()])),
  [RM_COMMIT_TS_ID]: {
    ZEROPAGE: applied('a zeroed pg_commit_ts page'),
    TRUNCATE: applied(
      'removes the pg_commit_ts segments before the cutoff; moves oldestCommitTsXid of the checkpoint',
    ),
  },
  [RM_REPLORIGIN_ID]: {
    SET: applied('the progress of the replication origin, as pg_logical/replorigin_checkpoint holds it'),
    DROP: applied('forgets the progress of the replication origin'),
  },
  [RM_GENERIC_ID]: { Generic: pages() },
  [RM_LOGICALMSG_ID]: { MESSAGE: none('a message for logical decoding') },
}

/** The entry of a record; undefined for custom rmgrs and record types PostgreSQL 15 does not write. */
export function censusOf(rmid: number, info: number): CensusEntry | undefined {
  if (!rmgrIdIsBuiltin(rmid)) return undefined
  return RECORD_CENSUS[rmid]?.[recordTypeName(rmid, info)]
}

const EFFECT_WORDS: Record<RecordEffect, string> = {
  pages: 'page images',
  applied: 'applied',
  none: 'no storage effect',
}

/** The census as the Markdown table docs/postgres-on-zenith.md carries, columns padded. */
export function renderRecordCensus(): string {
  const rows: string[][] = [['rmgr', 'record', 'effect', 'what zenith does, or why nothing']]
  for (let rmid = 0; rmid <= RM_MAX_BUILTIN_ID; rmid++) {
    for (const { op, name } of recordTypes(rmid)) {
      const e = censusOf(rmid, op)
      rows.push([rmgrName(rmid), name, e ? EFFECT_WORDS[e.effect] : 'MISSING', e?.note ?? ''])
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c])).join(' | ')} |`
  return [
    line(rows[0]),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ].join('\n')
}
