/** TimestampTz, as WAL records and replication messages carry it: microseconds since 2000-01-01 00:00 UTC. */

/** 2000-01-01 00:00 UTC in microseconds since the Unix epoch. */
export const PG_EPOCH_UNIX_US = 946_684_800_000_000n

/** Now, in microseconds since Postgres' epoch. */
export function pgNowUs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) - PG_EPOCH_UNIX_US
}
