/**
 * The built-in workloads of `zenith wal load`: their tables, created when missing and filled to the
 * size `--scale` asks for, and one transaction of each as a single simple-query string. Several
 * statements in one Query message run as one implicit transaction, so a transaction is one round trip and
 * a failed one leaves nothing to roll back.
 *
 *   insert   one row of ~130 bytes into zenith_load_insert (bigserial key: one btree, always the right edge)
 *   update   one row of zenith_load_rows (scale × 100,000 rows) by primary key: HOT updates, random pages
 *   mixed    an update, a read of that row and an insert, as one transaction
 *   pgbench  pgbench's TPC-B-like transaction on its own tables (`pgbench -i -s <scale>` when missing)
 */
import { runPgBin } from '../postgres/pg-bin.js'
import type { PgClient } from '../protocol/client.js'

export const WORKLOADS = ['insert', 'update', 'mixed', 'pgbench'] as const
export type WorkloadName = (typeof WORKLOADS)[number]

/** Rows of zenith_load_rows per unit of scale: pgbench_accounts' size, so that scales compare. */
const ROWS_PER_SCALE = 100_000

export interface Workload {
  /** Creates and fills what is missing; says what it did. */
  setup(sql: PgClient, opts: { connstr: string; binDir: string }): Promise<string>
  /** One transaction; `r` is uniform in [0, 1). */
  transaction(r: () => number, client: number): string
}

const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))

async function setupInsertTable(sql: PgClient): Promise<void> {
  await sql.query(
    'CREATE TABLE IF NOT EXISTS zenith_load_insert (id bigserial PRIMARY KEY, client int NOT NULL, ' +
      'at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)',
  )
}

/** zenith_load_rows holds ids 1..rows; a smaller earlier table is topped up, a larger one kept. */
async function setupRowsTable(sql: PgClient, rows: number): Promise<string> {
  await sql.query(
    'CREATE TABLE IF NOT EXISTS zenith_load_rows (id int PRIMARY KEY, n bigint NOT NULL, filler text NOT NULL)',
  )
  const have = Number((await sql.query('SELECT coalesce(max(id), 0) FROM zenith_load_rows')).rows[0][0])
  if (have < rows) {
    await sql.query(
      `INSERT INTO zenith_load_rows SELECT g, 0, repeat('x', 84) FROM generate_series(${have + 1}, ${rows}) g`,
    )
  }
  return `zenith_load_rows: ${Math.max(have, rows)} rows${have < rows ? ` (${rows - have} added)` : ''}`
}

const insertRow = (r: () => number, client: number) =>
  `INSERT INTO zenith_load_insert (client, payload) VALUES (${client}, repeat(md5('${r()}'), 4));`

const updateRow = (id: number) => `UPDATE zenith_load_rows SET n = n + 1 WHERE id = ${id};`

async function setupPgbench(sql: PgClient, scale: number, connstr: string, binDir: string): Promise<string> {
  const exists = (await sql.query("SELECT to_regclass('pgbench_branches') IS NOT NULL")).rows[0][0] === 't'
  const branches = exists ? Number((await sql.query('SELECT count(*) FROM pgbench_branches')).rows[0][0]) : 0
  if (branches === scale) return `pgbench tables at scale ${scale}`
  // pgbench -i drops and recreates its tables: only when they are missing or of another scale.
  await runPgBin('pgbench', ['-i', '-q', '-s', String(scale), connstr], { binDir, timeoutMs: 600_000 })
  return `pgbench -i -s ${scale}`
}

function tpcbLike(r: () => number, scale: number): string {
  const aid = int(r, 1, scale * ROWS_PER_SCALE)
  const tid = int(r, 1, scale * 10)
  const bid = int(r, 1, scale)
  const delta = int(r, -5000, 5000)
  return (
    `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid}; ` +
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}; ` +
    `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid}; ` +
    `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid}; ` +
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`
  )
}

export function workload(name: WorkloadName, scale: number): Workload {
  const rows = scale * ROWS_PER_SCALE
  switch (name) {
    case 'insert':
      return {
        setup: async (sql) => {
          await setupInsertTable(sql)
          return 'zenith_load_insert ready'
        },
        transaction: insertRow,
      }
    case 'update':
      return {
        setup: (sql) => setupRowsTable(sql, rows),
        transaction: (r) => updateRow(int(r, 1, rows)),
      }
    case 'mixed':
      return {
        setup: async (sql) => {
          await setupInsertTable(sql)
          return setupRowsTable(sql, rows)
        },
        transaction: (r, client) => {
          const id = int(r, 1, rows)
          return `${updateRow(id)} SELECT n FROM zenith_load_rows WHERE id = ${id}; ${insertRow(r, client)}`
        },
      }
    case 'pgbench':
      return {
        setup: (sql, o) => setupPgbench(sql, scale, o.connstr, o.binDir),
        transaction: (r) => tpcbLike(r, scale),
      }
  }
}
