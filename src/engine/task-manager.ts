/**
 * The registry of the engine's background work (flush loops, compaction, GC, WAL receivers). Every task
 * gets an AbortSignal and is tracked until it ends, so detaching a tenant or stopping the pageserver can
 * cancel exactly that scope's tasks and wait for them: no task may touch a tenant's files after its
 * shutdown returned. Failures are logged and stay visible in list(), because a background task that dies
 * silently shows up much later as unbounded L0 growth or disk usage.
 */

export type TaskKind = string
export type TaskState = 'running' | 'finished' | 'failed' | 'cancelled'

export interface TaskScope {
  tenantId?: string
  timelineId?: string
}

export interface TaskInfo {
  id: number
  kind: TaskKind
  tenantId?: string
  timelineId?: string
  name: string
  startedAt: number
  endedAt?: number
  state: TaskState
  /** Why the task failed (state 'failed'). */
  error?: string
  runs: number
  /** Failed runs of a loop, in total; a one-shot task that failed counts 1. */
  failures: number
  lastRunAt?: number
  lastError?: string
}

/**
 * Every run of one kind of task since the manager started, kept apart from list(), whose history of ended
 * tasks is bounded: the metrics count runs and failures, which must never go down.
 */
export interface TaskKindStats {
  kind: TaskKind
  /** Runs in progress now (a loop waiting for its next run is not running). */
  running: number
  runs: number
  failures: number
  /** When the last run started and how long the last finished run took, ms. */
  lastRunAt?: number
  lastDurationMs?: number
}

export type TaskLogger = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void

export interface LoopHandle {
  /** Live record of the loop, updated as it runs. */
  info: TaskInfo
  /** Runs the loop now instead of at the end of its period; ignored while the period is 0 (paused). */
  kick(): void
}

// setTimeout fires at once for longer delays, so long waits are chained.
const MAX_TIMER_MS = 2 ** 31 - 1
// How soon a changed period (or an unpaused loop) takes effect during a long wait.
const RECHECK_MS = 10_000
const MAX_BACKOFF_MS = 5 * 60_000
const SLOW_SHUTDOWN_WARN_MS = 10_000
// Ended tasks kept for list(); failed ones are evicted last so that failures stay visible.
const HISTORY_LIMIT = 200

type WaitOutcome = 'elapsed' | 'aborted' | 'woken'

/** Waits ms, ending early on abort or when the function given to onWake's callback is called. */
function wait(ms: number, signal: AbortSignal, onWake?: (wake: () => void) => void): Promise<WaitOutcome> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve('aborted')
      return
    }
    let timer: NodeJS.Timeout | undefined
    let settled = false
    const finish = (how: WaitOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(how)
    }
    const onAbort = (): void => finish('aborted')
    const arm = (left: number): void => {
      const step = Math.min(left, MAX_TIMER_MS)
      timer = setTimeout(() => (left > step ? arm(left - step) : finish('elapsed')), step)
    }
    arm(Math.max(0, ms))
    signal.addEventListener('abort', onAbort, { once: true })
    onWake?.(() => finish('woken'))
  })
}

/** Sleeps ms, or less when the signal aborts: it resolves either way, and leaves no timer behind. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await wait(ms, signal)
}

/** Sleeps ms; on abort rejects at once with the signal's reason, and leaves no timer behind. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if ((await wait(ms, signal)) === 'aborted') throw signal.reason
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A task that ends by throwing because it was told to stop has been cancelled, not failed. */
function isCancellation(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted && (err === signal.reason || (err instanceof Error && err.name === 'AbortError'))
}

/** The delay before the next run: the period, doubled for every failure in a row, up to 5 min. */
function nextDelay(periodMs: number, failuresInARow: number): number {
  if (failuresInARow === 0) return periodMs
  const backedOff = periodMs * 2 ** Math.min(failuresInARow, 30)
  return Math.min(backedOff, Math.max(periodMs, MAX_BACKOFF_MS))
}

function matches(info: TaskInfo, scope: TaskScope | 'all'): boolean {
  if (scope === 'all') return true
  return (
    (scope.tenantId === undefined || info.tenantId === scope.tenantId) &&
    (scope.timelineId === undefined || info.timelineId === scope.timelineId)
  )
}

function logToStderr(level: string, msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`${level}: ${msg}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}\n`)
}

interface Running {
  info: TaskInfo
  controller: AbortController
  done: Promise<void>
}

export class TaskManager {
  private nextId = 1
  private readonly running = new Map<number, Running>()
  private readonly ended: TaskInfo[] = []
  private readonly kinds = new Map<TaskKind, TaskKindStats>()
  private readonly log: TaskLogger

  constructor(opts: { log?: TaskLogger } = {}) {
    this.log = opts.log ?? logToStderr
  }

  /** Starts a one-shot task; the returned record is live (its state changes when the task ends). */
  spawn(
    kind: TaskKind,
    scope: TaskScope,
    name: string,
    fn: (signal: AbortSignal) => Promise<void>,
  ): TaskInfo {
    return this.start(kind, scope, name, async (info, signal) => {
      info.runs = 1
      info.lastRunAt = info.startedAt
      await this.timed(kind, signal, () => fn(signal))
    })
  }

  /**
   * Starts a loop that runs fn one period after the previous run ended, until cancelled. periodMs is read
   * again while waiting, so configuration changes apply without restarting the loop; 0 pauses it. A failed
   * run is logged and recorded, and the next run waits longer (doubling per failure in a row, up to 5 min
   * or the period if that is longer).
   */
  loop(
    kind: TaskKind,
    scope: TaskScope,
    name: string,
    periodMs: () => number,
    fn: (signal: AbortSignal) => Promise<void>,
  ): LoopHandle {
    let kicked = false
    let wake: (() => void) | undefined
    const info = this.start(kind, scope, name, async (record, signal) => {
      let failuresInARow = 0
      while (!signal.aborted) {
        const waitStart = Date.now()
        for (;;) {
          const period = periodMs()
          if (kicked) {
            kicked = false
            if (period > 0) break
          }
          let left = RECHECK_MS
          if (period > 0) {
            left = nextDelay(period, failuresInARow) - (Date.now() - waitStart)
            if (left <= 0) break
          }
          const how = await wait(Math.min(left, RECHECK_MS), signal, (w) => {
            wake = w
          })
          wake = undefined
          if (how === 'aborted') return
        }
        record.runs++
        record.lastRunAt = Date.now()
        try {
          await this.timed(kind, signal, () => fn(signal))
          failuresInARow = 0
        } catch (err) {
          if (isCancellation(err, signal)) return
          failuresInARow++
          record.failures++
          record.lastError = errorMessage(err)
          this.log(
            'warn',
            `task ${name} failed (${failuresInARow} in a row), will retry: ${record.lastError}`,
            {
              ...this.fieldsOf(record),
              failures: record.failures,
            },
          )
        }
      }
    })
    return {
      info,
      kick: () => {
        kicked = true
        wake?.()
      },
    }
  }

  /**
   * Cancels every task in the scope ('all', a tenant, a timeline) and resolves once all of them have ended,
   * including tasks of the scope started while waiting.
   */
  async shutdown(scope: TaskScope | 'all'): Promise<void> {
    if (scope !== 'all' && scope.tenantId === undefined && scope.timelineId === undefined) {
      // An empty scope matches everything; stopping the whole pageserver must be asked for by name.
      throw new TypeError("shutdown needs a tenantId or timelineId, or 'all'")
    }
    for (;;) {
      const tasks = [...this.running.values()].filter((t) => matches(t.info, scope))
      if (tasks.length === 0) return
      for (const t of tasks) t.controller.abort()
      const nag = setInterval(() => {
        const left = tasks.filter((t) => t.info.state === 'running').map((t) => t.info.name)
        this.log('warn', `still waiting for ${left.length} task(s) to stop: ${left.join(', ')}`, {
          scope,
        })
      }, SLOW_SHUTDOWN_WARN_MS)
      try {
        await Promise.all(tasks.map((t) => t.done))
      } finally {
        clearInterval(nag)
      }
    }
  }

  /** Snapshots of the running tasks and of recently ended ones, oldest first. */
  list(scope: TaskScope | 'all' = 'all'): TaskInfo[] {
    const all = [...this.ended, ...[...this.running.values()].map((t) => t.info)]
    return all
      .filter((info) => matches(info, scope))
      .sort((a, b) => a.id - b.id)
      .map((info) => ({ ...info }))
  }

  /** Runs, failures and the last run of each kind of task, by kind. */
  kindStats(): TaskKindStats[] {
    return [...this.kinds.values()].map((k) => ({ ...k }))
  }

  /** One run of a task of `kind`, counted in kindStats(); a cancelled run is not a failure. */
  private async timed(kind: TaskKind, signal: AbortSignal, run: () => Promise<void>): Promise<void> {
    let k = this.kinds.get(kind)
    if (!k) {
      k = { kind, running: 0, runs: 0, failures: 0 }
      this.kinds.set(kind, k)
    }
    const began = Date.now()
    k.running++
    k.runs++
    k.lastRunAt = began
    try {
      await run()
    } catch (err) {
      if (!isCancellation(err, signal)) k.failures++
      throw err
    } finally {
      k.running--
      k.lastDurationMs = Date.now() - began
    }
  }

  private start(
    kind: TaskKind,
    scope: TaskScope,
    name: string,
    body: (info: TaskInfo, signal: AbortSignal) => Promise<void>,
  ): TaskInfo {
    const info: TaskInfo = {
      id: this.nextId++,
      kind,
      name,
      startedAt: Date.now(),
      state: 'running',
      runs: 0,
      failures: 0,
    }
    if (scope.tenantId !== undefined) info.tenantId = scope.tenantId
    if (scope.timelineId !== undefined) info.timelineId = scope.timelineId
    const controller = new AbortController()
    const signal = controller.signal
    const run = async (): Promise<void> => {
      try {
        await body(info, signal)
        info.state = signal.aborted ? 'cancelled' : 'finished'
      } catch (err) {
        if (isCancellation(err, signal)) {
          info.state = 'cancelled'
        } else {
          info.state = 'failed'
          info.failures++
          info.error = errorMessage(err)
          this.log('error', `task ${name} failed: ${info.error}`, {
            ...this.fieldsOf(info),
            stack: err instanceof Error ? err.stack : undefined,
          })
        }
      } finally {
        info.endedAt = Date.now()
        this.running.delete(info.id)
        this.remember(info)
      }
    }
    const entry: Running = { info, controller, done: Promise.resolve() }
    this.running.set(info.id, entry)
    entry.done = run()
    return info
  }

  private remember(info: TaskInfo): void {
    this.ended.push(info)
    if (this.ended.length > HISTORY_LIMIT) {
      const i = this.ended.findIndex((t) => t.state !== 'failed')
      this.ended.splice(Math.max(i, 0), 1)
    }
  }

  private fieldsOf(info: TaskInfo): Record<string, unknown> {
    return { taskId: info.id, kind: info.kind, tenantId: info.tenantId, timelineId: info.timelineId }
  }
}
