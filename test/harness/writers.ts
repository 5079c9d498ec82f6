/**
 * Writers that remember what was acknowledged, for fault tests: each one keeps a node-postgres
 * connection and runs one committing statement after another with ($1, $2) = (writer, seq), seq new for
 * every attempt. A statement that returned OK is acknowledged; one that failed — the compute was killed,
 * is starting up, refused the connection — is not, and the writer reconnects and goes on. Whether a
 * failed statement committed is unknown, so it is only "attempted".
 *
 *     const w = new AckWriters(connstr, 3, 'INSERT INTO t (writer, seq) VALUES ($1, $2)')
 *     w.start()
 *     …
 *     await w.stop()
 *     w.ackedRows()      // ['0/1', '0/2', …]: writer/seq of every acknowledged commit
 */
import pg from 'pg'
import { sleep } from './wait.js'

const RECONNECT_MS = 100
const CONNECT_TIMEOUT_MS = 5_000
/**
 * A statement unanswered this long is given up (the connection dropped): a hang must not outlive the test.
 * Never a server-side cancel: a commit cancelled while it waits for its synchronous standbys is reported
 * as committed, with a warning, though no standby has it.
 */
const STATEMENT_GIVE_UP_MS = 120_000

interface Writer {
  acked: number[]
  attempted: number[]
  failures: number
  lastError: string | null
}

export class AckWriters {
  private readonly writers: Writer[]
  private loops: Promise<void>[] = []
  private stopping = false
  private readonly clients = new Set<pg.Client>()

  constructor(
    readonly connstr: string,
    count: number,
    private readonly sql: string,
  ) {
    this.writers = Array.from({ length: count }, () => ({
      acked: [],
      attempted: [],
      failures: 0,
      lastError: null,
    }))
  }

  start(): void {
    this.stopping = false
    this.loops = this.writers.map((w, i) => this.run(w, i))
  }

  /** Ends every writer; a statement in flight is abandoned (its connection closed), not acknowledged. */
  async stop(): Promise<void> {
    this.stopping = true
    for (const c of this.clients) void c.end().catch(() => {})
    await Promise.all(this.loops)
    this.loops = []
  }

  /** Acknowledged commits per writer. */
  acked(): number[] {
    return this.writers.map((w) => w.acked.length)
  }

  total(): number {
    return this.writers.reduce((n, w) => n + w.acked.length, 0)
  }

  attempts(): number {
    return this.writers.reduce((n, w) => n + w.attempted.length, 0)
  }

  failures(): number {
    return this.writers.reduce((n, w) => n + w.failures, 0)
  }

  lastErrors(): (string | null)[] {
    return this.writers.map((w) => w.lastError)
  }

  ackedRows(): string[] {
    return this.writers.flatMap((w, i) => w.acked.map((s) => `${i}/${s}`))
  }

  attemptedRows(): string[] {
    return this.writers.flatMap((w, i) => w.attempted.map((s) => `${i}/${s}`))
  }

  private async run(w: Writer, id: number): Promise<void> {
    let client: pg.Client | null = null
    const drop = () => {
      if (client) {
        this.clients.delete(client)
        void client.end().catch(() => {})
      }
      client = null
    }
    while (!this.stopping) {
      try {
        if (!client) {
          const fresh = new pg.Client({
            connectionString: this.connstr,
            connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
            query_timeout: STATEMENT_GIVE_UP_MS,
          })
          // A server that dies while we are idle emits 'error'; unheard, it would crash the test.
          fresh.on('error', () => {})
          client = fresh
          this.clients.add(fresh)
          await fresh.connect()
        }
        const seq = w.attempted.length
        w.attempted.push(seq)
        await client.query(this.sql, [id, seq])
        w.acked.push(seq)
      } catch (err) {
        // stop() closed the connection under it: that is the end, not a failure.
        if (this.stopping) break
        w.failures++
        w.lastError = (err as Error).message
        drop()
        await sleep(RECONNECT_MS)
      }
    }
    drop()
  }
}
