/**
 * A varied SQL workload that exercises most of what Postgres writes to WAL: pgbench, indexes of every
 * built-in access method, TOAST values, sequences, subtransactions, prepared transactions, VACUUM,
 * TRUNCATE, DROP TABLE and CREATE/DROP DATABASE with both strategies. Needs max_prepared_transactions > 0.
 */
import type { PgCluster } from './postgres.js'

export interface WorkloadOptions {
  pgbenchScale?: number
  pgbenchTransactions?: number
}

export async function runVariedWorkload(pg: PgCluster, opts: WorkloadOptions = {}): Promise<void> {
  await pg.run('pgbench', ['-i', '-q', '-s', String(opts.pgbenchScale ?? 1), 'postgres'])
  await pg.run('pgbench', ['-n', '-c', '2', '-t', String(opts.pgbenchTransactions ?? 200), 'postgres'])
  await pg.sql([
    'CREATE TABLE docs (id serial PRIMARY KEY, body text, tags text[], pos point, rng int4range, ts tsvector)',
    `INSERT INTO docs (body, tags, pos, rng, ts)
      SELECT md5(i::text), ARRAY[md5(i::text), (i % 7)::text], point(i, i % 13), int4range(i, i + 10),
             to_tsvector('simple', 'word' || (i % 50) || ' other' || (i % 17))
      FROM generate_series(1, 3000) i`,
    'CREATE INDEX docs_hash ON docs USING hash (body)',
    'CREATE INDEX docs_gin ON docs USING gin (tags)',
    'CREATE INDEX docs_gin_ts ON docs USING gin (ts) WITH (fastupdate = on)',
    'CREATE INDEX docs_gist ON docs USING gist (pos)',
    'CREATE INDEX docs_spgist ON docs USING spgist (rng)',
    'CREATE INDEX docs_brin ON docs USING brin (id) WITH (pages_per_range = 4)',
    "UPDATE docs SET body = body || 'x', tags = tags || 'more'::text WHERE id % 5 = 0",
    'DELETE FROM docs WHERE id % 11 = 0',

    // TOAST: values far beyond the 2 KiB threshold, some incompressible
    'CREATE TABLE blobs (id int PRIMARY KEY, payload text)',
    'INSERT INTO blobs SELECT i, repeat(md5(i::text), 2000) FROM generate_series(1, 20) i',
    `INSERT INTO blobs SELECT 100 + i, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300))
      FROM generate_series(1, 10) i`,
    "UPDATE blobs SET payload = payload || 'tail' WHERE id % 3 = 0",

    'CREATE SEQUENCE counter CACHE 1',
    "SELECT nextval('counter') FROM generate_series(1, 50)",

    // subtransactions, committed and rolled back
    'CREATE TABLE sub (id int, note text)',
    'BEGIN',
    "INSERT INTO sub VALUES (1, 'top')",
    'SAVEPOINT a',
    "INSERT INTO sub VALUES (2, 'in a')",
    'SAVEPOINT b',
    "INSERT INTO sub VALUES (3, 'rolled back')",
    'ROLLBACK TO SAVEPOINT b',
    "INSERT INTO sub VALUES (4, 'after b')",
    'RELEASE SAVEPOINT a',
    'COMMIT',
    `DO $$
    BEGIN
      FOR i IN 1..80 LOOP
        BEGIN
          INSERT INTO sub VALUES (100 + i, 'loop');
          IF i % 4 = 0 THEN RAISE EXCEPTION 'undo %', i; END IF;
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
      END LOOP;
    END $$`,

    // two-phase commit, both outcomes
    'BEGIN',
    "INSERT INTO sub VALUES (500, 'prepared, committed')",
    "PREPARE TRANSACTION 'p_commit'",
    "COMMIT PREPARED 'p_commit'",
    'BEGIN',
    "INSERT INTO sub VALUES (501, 'prepared, rolled back')",
    'SAVEPOINT s',
    "INSERT INTO sub VALUES (502, 'x')",
    "PREPARE TRANSACTION 'p_abort'",
    "ROLLBACK PREPARED 'p_abort'",

    'VACUUM (ANALYZE) docs',
    'VACUUM FREEZE pgbench_accounts',
    'CREATE TABLE gone AS SELECT generate_series(1, 1000) AS v',
    'TRUNCATE sub',
    'DROP TABLE gone',
    'ALTER TABLE docs ADD COLUMN extra int DEFAULT 7',
    'ALTER TABLE docs ALTER COLUMN extra TYPE bigint',
  ])
  await pg.sql('CREATE DATABASE db_wal_log STRATEGY = WAL_LOG')
  await pg.sql('CREATE DATABASE db_file_copy STRATEGY = FILE_COPY')
  await pg.sql('CREATE TABLE in_copy AS SELECT generate_series(1, 500) AS v', { db: 'db_file_copy' })
  await pg.sql('DROP DATABASE db_wal_log')
  await pg.sql('CHECKPOINT')
}
