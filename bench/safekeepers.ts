/**
 * A compute on three zenith safekeepers against the same compute with stock Postgres' own quorum — three
 * `pg_receivewal --synchronous` as ANY 2 of 3 — and against plain Postgres, in the same run.
 *
 * Figures:
 *   tps_sk3               pgbench tps (tpcb-like, scale 10, 4 clients, 30 s) on an endpoint of a local
 *                         cluster with 3 safekeepers (ANY 2) and the pageserver reading from them
 *   tps_receivewal3       the same pgbench on stock Postgres with the same settings and three
 *                         pg_receivewal --synchronous as synchronous_standby_names = 'ANY 2 (…)'
 *   tps_plain             the same pgbench with no standby
 *   sk3_vs_receivewal     tps_sk3 / tps_receivewal3 (goal ≥ 0.8)
 *   latency_ms_sk3, latency_ms_receivewal3   pgbench's average latency per transaction
 *   ingest_lag_p99_bytes  p99 of how far the pageserver's last_record_lsn is behind the compute's flush
 *                         LSN during the sk3 run, sampled every 50 ms
 *   failover_s            the safekeeper the pageserver streams from SIGKILLed under load → seconds until
 *                         the pageserver has the compute's WAL again, from another safekeeper
 *   tps_sk3_no_pageserver the same pgbench on the same compute and safekeepers after the pageserver is
 *                         stopped and backpressure turned off: what the quorum costs by itself, apart from
 *                         the pageserver's ingest, which on a 2-core machine competes for the same CPU
 *   sk3_no_pageserver_vs_receivewal   tps_sk3_no_pageserver / tps_receivewal3
 * Every compute runs with wal_consistency_checking = all, as zenith's computes do. The safekeepers and
 * the pageserver run as processes of their own, as `zenith start` runs them; the lag is sampled during
 * the timed run only (pgbench -i writes hundreds of MB that only backpressure ties to the pageserver).
 */
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { safekeeperDir } from '../src/control/layout.js'
import { stopPageserver } from '../src/control/pageserver-process.js'
import { startSafekeeper, stopSafekeeper } from '../src/control/safekeeper-process.js'
import { asPgUser, runPgBin } from '../src/postgres/pg-bin.js'
import { PgClient } from '../src/protocol/client.js'
import {
  loadSafekeeperConfig,
  SAFEKEEPER_CONFIG_FILE,
  saveSafekeeperConfig,
} from '../src/safekeeper/config.js'
import { makeTempDir, pgBin, startPostgres } from '../test/harness/postgres.js'
import { CLIENTS, COMPUTE_SETTINGS, log, pgbench, pgbenchInit, SCALE, SECONDS } from './pgbench.js'
import { timedPgbench, withZenithCluster } from './zenith-cluster.js'

function safekeeperRun() {
  return withZenithCluster('sk', 3, async (c) => {
    const { repoDir, endpoint: e, pageserver: ps } = c
    log(`sk3: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    const run = await timedPgbench(c)
    // Failover: kill the safekeeper the pageserver streams from while a load runs.
    const load = runPgBin('pgbench', ['-c', '2', '-T', '10', c.connstr], { timeoutMs: 60_000 })
    await new Promise((r) => setTimeout(r, 2000))
    const current = (await ps.timeline(e.tenantId, e.timelineId)).walreceiver_safekeeper ?? 1
    await stopSafekeeper(repoDir, current, { immediate: true })
    const killedAt = Date.now()
    const target = await c.flushLsn()
    while ((await c.ingested()) < target && Date.now() - killedAt < 60_000)
      await new Promise((r) => setTimeout(r, 20))
    const failoverS = (Date.now() - killedAt) / 1000
    await load
    // The quorum alone: the safekeepers restarted without backpressure (it would hold every ack once
    // the stopped pageserver's last feedback is far enough behind), the pageserver gone.
    await stopPageserver(repoDir, 1)
    for (const id of [1, 2, 3]) {
      await stopSafekeeper(repoDir, id)
      const file = path.join(safekeeperDir(repoDir, id), SAFEKEEPER_CONFIG_FILE)
      saveSafekeeperConfig(file, { ...loadSafekeeperConfig(file), maxReplicationWriteLag: 0 })
      await startSafekeeper(repoDir, id)
    }
    log(`sk3 without the pageserver: ${SECONDS} s with ${CLIENTS} clients ...`)
    const alone = await pgbench(c.connstr)
    return { ...run, failoverS, alone }
  })
}

async function receivewalRun() {
  const pg = await startPostgres({
    name: 'bench-receivewal',
    settings: {
      ...COMPUTE_SETTINGS,
      synchronous_commit: 'on',
      synchronous_standby_names: 'ANY 2 (rw1, rw2, rw3)',
    },
  })
  const receivers: ResultPromise[] = []
  const dirs: string[] = []
  try {
    for (const name of ['rw1', 'rw2', 'rw3']) {
      const dir = await makeTempDir(`zenith-bench-${name}-`)
      dirs.push(dir)
      const [cmd, args] = asPgUser(pgBin('pg_receivewal'), [
        '--synchronous',
        '--no-loop',
        '-D',
        dir,
        '-d',
        `host=127.0.0.1 port=${pg.port} user=postgres application_name=${name}`,
      ])
      receivers.push(execa(cmd, args, { reject: false }))
    }
    const client = await PgClient.connect({ host: '127.0.0.1', port: pg.port, user: 'postgres' })
    for (let i = 0; i < 200; i++) {
      const n = (await client.query("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'"))
        .rows[0][0]
      if (n === '3') break
      await new Promise((r) => setTimeout(r, 50))
    }
    await client.close()
    log(`receivewal3: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    await pgbenchInit(pg.connectionString())
    return await pgbench(pg.connectionString())
  } finally {
    for (const r of receivers) r.kill('SIGTERM')
    await Promise.all(receivers)
    await pg.destroy()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  }
}

async function plainRun() {
  const pg = await startPostgres({ name: 'bench-sk-plain', settings: COMPUTE_SETTINGS })
  try {
    log(`plain: pgbench -i -s ${SCALE}, then ${SECONDS} s with ${CLIENTS} clients ...`)
    await pgbenchInit(pg.connectionString())
    return await pgbench(pg.connectionString())
  } finally {
    await pg.destroy()
  }
}

export async function safekeepersBench(): Promise<Record<string, number | string>> {
  const sk = await safekeeperRun()
  const rw = await receivewalRun()
  const plain = await plainRun()
  log(
    `sk3 ${sk.tps.toFixed(0)} tps (${sk.alone.tps.toFixed(0)} without the pageserver), receivewal3 ${rw.tps.toFixed(0)} tps, plain ${plain.tps.toFixed(0)} tps`,
  )
  return {
    tps_sk3: Math.round(sk.tps),
    tps_receivewal3: Math.round(rw.tps),
    tps_plain: Math.round(plain.tps),
    sk3_vs_receivewal: Number((sk.tps / rw.tps).toFixed(3)),
    latency_ms_sk3: sk.latencyMs,
    latency_ms_receivewal3: rw.latencyMs,
    ingest_lag_p99_bytes: sk.lag.p99,
    failover_s: Number(sk.failoverS.toFixed(2)),
    tps_sk3_no_pageserver: Math.round(sk.alone.tps),
    sk3_no_pageserver_vs_receivewal: Number((sk.alone.tps / rw.tps).toFixed(3)),
  }
}
