import { afterEach, describe, expect, it, vi } from 'vitest'
import { sleep, type TaskLogger, TaskManager } from '../../src/engine/task-manager.js'

const A = 'a'.repeat(32)
const B = 'b'.repeat(32)

interface LogLine {
  level: string
  msg: string
  fields?: Record<string, unknown>
}

function recorder(): { lines: LogLine[]; log: TaskLogger } {
  const lines: LogLine[] = []
  return { lines, log: (level, msg, fields) => lines.push({ level, msg, fields }) }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

// Managers a test created; stopped even when the test fails, so no loop outlives its test.
const managers: TaskManager[] = []

function manager(log: TaskLogger = recorder().log): TaskManager {
  const tm = new TaskManager({ log })
  managers.push(tm)
  return tm
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((tm) => tm.shutdown('all')))
  vi.useRealTimers()
})

describe('sleep', () => {
  it('waits, and rejects at once on abort without leaving a timer', async () => {
    const started = Date.now()
    await sleep(20, new AbortController().signal)
    expect(Date.now() - started).toBeGreaterThanOrEqual(15)

    vi.useFakeTimers()
    const ac = new AbortController()
    const slept = sleep(60_000, ac.signal)
    expect(vi.getTimerCount()).toBe(1)
    ac.abort()
    await expect(slept).rejects.toMatchObject({ name: 'AbortError' })
    expect(vi.getTimerCount()).toBe(0)

    await expect(sleep(10, ac.signal)).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('sleeps longer than the 24.8 days a single timer allows', async () => {
    vi.useFakeTimers()
    let done = false
    void sleep(30 * 86_400_000, new AbortController().signal).then(() => {
      done = true
    })
    await vi.advanceTimersByTimeAsync(29 * 86_400_000)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(86_400_000)
    expect(done).toBe(true)
  })
})

describe('TaskManager one-shot tasks', () => {
  it('tracks a task from start to finish', async () => {
    const tm = manager()
    const gate = deferred()
    const info = tm.spawn('upload', { tenantId: A, timelineId: B }, 'upload layer', () => gate.promise)
    expect(info).toMatchObject({ kind: 'upload', tenantId: A, timelineId: B, state: 'running', runs: 1 })
    expect(tm.list().map((t) => t.state)).toEqual(['running'])
    gate.resolve()
    await vi.waitFor(() => expect(info.state).toBe('finished'))
    expect(info.endedAt).toBeGreaterThanOrEqual(info.startedAt)
    expect(tm.list()).toEqual([info])
    expect(tm.list()[0]).not.toBe(info)
  })

  it('records and logs a failure with the name and scope', async () => {
    const { lines, log } = recorder()
    const tm = manager(log)
    const info = tm.spawn('gc', { tenantId: A }, 'gc once', async () => {
      throw new Error('disk on fire')
    })
    await vi.waitFor(() => expect(info.state).toBe('failed'))
    expect(tm.list({ tenantId: A })).toMatchObject([
      { name: 'gc once', state: 'failed', error: 'disk on fire' },
    ])
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 'error', msg: 'task gc once failed: disk on fire' })
    expect(lines[0].fields).toMatchObject({ kind: 'gc', tenantId: A, taskId: info.id })
  })

  it('counts a task that stops because of its abort signal as cancelled, not failed', async () => {
    const { lines, log } = recorder()
    const tm = manager(log)
    const throwing = tm.spawn('flush', { tenantId: A }, 'sleeper', (signal) => sleep(60_000, signal))
    const returning = tm.spawn('flush', { tenantId: A }, 'poller', async (signal) => {
      while (!signal.aborted) await new Promise((r) => setTimeout(r, 5))
    })
    const stubborn = tm.spawn('flush', { tenantId: A }, 'stubborn', async (signal) => {
      await new Promise((r) => signal.addEventListener('abort', r))
      throw new Error('could not finish the write')
    })
    await tm.shutdown({ tenantId: A })
    expect(throwing.state).toBe('cancelled')
    expect(returning.state).toBe('cancelled')
    expect(stubborn).toMatchObject({ state: 'failed', error: 'could not finish the write' })
    expect(lines.map((l) => l.msg)).toEqual(['task stubborn failed: could not finish the write'])
  })
})

describe('TaskManager history', () => {
  it('forgets old finished tasks before failed ones', async () => {
    const tm = manager()
    const failed = tm.spawn('gc', { tenantId: A }, 'failed early', async () => {
      throw new Error('boom')
    })
    const many = Array.from({ length: 250 }, (_, i) =>
      tm.spawn('upload', { tenantId: B }, `upload ${i}`, async () => {}),
    )
    await vi.waitFor(() => expect(many.every((t) => t.state === 'finished')).toBe(true))
    const listed = tm.list()
    expect(listed).toHaveLength(200)
    expect(listed[0]).toMatchObject({ id: failed.id, state: 'failed' })
    expect(listed.at(-1)?.name).toBe('upload 249')
  })
})

describe('TaskManager loops', () => {
  it('runs periodically and follows a changed period', async () => {
    vi.useFakeTimers()
    const tm = manager()
    let period = 100
    let runs = 0
    const { info } = tm.loop(
      'compaction',
      { tenantId: A },
      'compaction loop',
      () => period,
      async () => {
        runs++
      },
    )
    await vi.advanceTimersByTimeAsync(350)
    expect(runs).toBe(3)
    expect(info.runs).toBe(3)
    expect(info.lastRunAt).toBe(info.startedAt + 300)

    // Lengthened during a wait: the wait that started at 300 now ends at 1300.
    period = 1000
    await vi.advanceTimersByTimeAsync(1299 - 350)
    expect(runs).toBe(3)
    await vi.advanceTimersByTimeAsync(1)
    expect(runs).toBe(4)

    // Paused, then resumed: a loop with period 0 does not run, and notices a new period within 10 s.
    period = 0
    await vi.advanceTimersByTimeAsync(60_000)
    expect(runs).toBe(4)
    period = 50
    await vi.advanceTimersByTimeAsync(10_050)
    expect(runs).toBeGreaterThanOrEqual(5)

    await tm.shutdown('all')
    expect(info.state).toBe('cancelled')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps running after a failed run, backing off and recording the error', async () => {
    vi.useFakeTimers()
    const { lines, log } = recorder()
    const tm = manager(log)
    const runTimes: number[] = []
    let failuresLeft = 2
    const t0 = Date.now()
    const { info } = tm.loop(
      'gc',
      { tenantId: A },
      'gc loop',
      () => 100,
      async () => {
        runTimes.push(Date.now() - t0)
        if (failuresLeft-- > 0) throw new Error(`bad layer ${failuresLeft}`)
      },
    )
    await vi.advanceTimersByTimeAsync(1000)
    // Failure 1 at 100 waits 200, failure 2 at 300 waits 400, the success at 700 goes back to 100.
    expect(runTimes).toEqual([100, 300, 700, 800, 900, 1000])
    expect(info).toMatchObject({ state: 'running', runs: 6, failures: 2, lastError: 'bad layer 0' })
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'task gc loop failed (1 in a row), will retry: bad layer 1'],
      ['warn', 'task gc loop failed (2 in a row), will retry: bad layer 0'],
    ])
    expect(lines[0].fields).toMatchObject({ kind: 'gc', tenantId: A, failures: 1 })
    await tm.shutdown('all')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('runs at once when kicked, but not while paused', async () => {
    vi.useFakeTimers()
    const tm = manager()
    let period = 3_600_000
    let runs = 0
    const loop = tm.loop(
      'compaction',
      { tenantId: A },
      'compaction loop',
      () => period,
      async () => {
        runs++
      },
    )
    await vi.advanceTimersByTimeAsync(1000)
    expect(runs).toBe(0)
    loop.kick()
    await vi.advanceTimersByTimeAsync(0)
    expect(runs).toBe(1)
    // The period restarts after a kicked run.
    await vi.advanceTimersByTimeAsync(3_599_999)
    expect(runs).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(runs).toBe(2)

    period = 0
    loop.kick()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(runs).toBe(2)
    await tm.shutdown('all')
    loop.kick()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('fails visibly when its own machinery breaks', async () => {
    const { lines, log } = recorder()
    const tm = manager(log)
    const { info } = tm.loop(
      'gc',
      { tenantId: A },
      'gc loop',
      () => {
        throw new Error('tenant config gone')
      },
      async () => {},
    )
    await vi.waitFor(() => expect(info.state).toBe('failed'))
    expect(info.error).toBe('tenant config gone')
    expect(lines[0]).toMatchObject({ level: 'error', msg: 'task gc loop failed: tenant config gone' })
  })
})

describe('TaskManager shutdown', () => {
  it('stops only the scope it is given and waits for slow tasks', async () => {
    const tm = manager()
    let slowEnded = false
    const slow = tm.spawn('walreceiver', { tenantId: A, timelineId: A }, 'slow to stop', async (signal) => {
      await new Promise((r) => signal.addEventListener('abort', r))
      // Finishing an in-flight write after the abort was noticed.
      await new Promise((r) => setTimeout(r, 50))
      slowEnded = true
    })
    const aLoop = tm.loop(
      'compaction',
      { tenantId: A },
      'compaction A',
      () => 5,
      async () => {},
    )
    const bLoop = tm.loop(
      'compaction',
      { tenantId: B },
      'compaction B',
      () => 5,
      async () => {},
    )
    const bFlush = tm.loop(
      'flush',
      { tenantId: B, timelineId: B },
      'flush B',
      () => 5,
      async () => {},
    )
    await new Promise((r) => setTimeout(r, 30))

    await tm.shutdown({ tenantId: A })
    expect(slowEnded).toBe(true)
    // It returned normally, but because it was told to stop: cancelled.
    expect(slow.state).toBe('cancelled')
    expect(aLoop.info.state).toBe('cancelled')
    expect(bLoop.info.state).toBe('running')
    expect(bLoop.info.runs).toBeGreaterThan(0)
    expect(tm.list({ tenantId: B }).map((t) => t.name)).toEqual(['compaction B', 'flush B'])

    await tm.shutdown({ timelineId: B })
    expect(bFlush.info.state).toBe('cancelled')
    expect(bLoop.info.state).toBe('running')

    await tm.shutdown('all')
    expect(bLoop.info.state).toBe('cancelled')
    expect(tm.list().every((t) => t.state !== 'running')).toBe(true)
  })

  it('also stops tasks the scope starts while it is shutting down', async () => {
    const tm = manager()
    let child: ReturnType<TaskManager['spawn']> | undefined
    tm.spawn('compaction', { tenantId: A }, 'parent', async (signal) => {
      await new Promise((r) => signal.addEventListener('abort', r))
      child = tm.spawn('upload', { tenantId: A }, 'child', (s) => sleep(60_000, s))
    })
    await tm.shutdown({ tenantId: A })
    expect(child?.state).toBe('cancelled')
  })

  it('warns about tasks that take long to stop', async () => {
    vi.useFakeTimers()
    const { lines, log } = recorder()
    const tm = manager(log)
    tm.spawn('gc', { tenantId: A }, 'stuck gc', async (signal) => {
      await new Promise((r) => signal.addEventListener('abort', r))
      await new Promise((r) => setTimeout(r, 25_000))
    })
    const done = tm.shutdown({ tenantId: A })
    await vi.advanceTimersByTimeAsync(25_000)
    await done
    expect(lines.map((l) => l.msg)).toEqual([
      'still waiting for 1 task(s) to stop: stuck gc',
      'still waiting for 1 task(s) to stop: stuck gc',
    ])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('refuses an empty scope', async () => {
    const tm = manager()
    await expect(tm.shutdown({})).rejects.toThrow(TypeError)
  })
})

describe('TaskManager kind stats', () => {
  it('counts runs and failures per kind beyond the bounded history, and knows what runs now', async () => {
    const tm = manager()
    const gate = deferred()
    tm.spawn('flush', { tenantId: A }, 'slow flush', () => gate.promise)
    await vi.waitFor(() => expect(tm.kindStats()).toMatchObject([{ kind: 'flush', running: 1, runs: 1 }]))
    gate.resolve()
    const many = Array.from({ length: 210 }, (_, i) =>
      tm.spawn('flush', { tenantId: B }, `flush ${i}`, async () => {
        if (i % 70 === 0) throw new Error('disk full')
      }),
    )
    const cancelled = deferred()
    tm.spawn('gc', { tenantId: A }, 'cancelled gc', (signal) => {
      signal.addEventListener('abort', () => cancelled.resolve())
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
    })
    await vi.waitFor(() => expect(many.every((t) => t.state !== 'running')).toBe(true))
    await tm.shutdown({ tenantId: A })
    const byKind = Object.fromEntries(tm.kindStats().map((k) => [k.kind, k]))
    // 211 runs though list() keeps 200 ended tasks; failures 3 (i = 0, 70, 140); the cancelled gc is none.
    expect(byKind.flush).toMatchObject({ running: 0, runs: 211, failures: 3 })
    expect(byKind.gc).toMatchObject({ running: 0, runs: 1, failures: 0 })
    expect(byKind.flush.lastDurationMs).toBeGreaterThanOrEqual(0)
    expect(byKind.flush.lastRunAt).toBeGreaterThan(0)
  })
})
