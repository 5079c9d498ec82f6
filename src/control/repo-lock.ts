/**
 * One command at a time changes a repo dir. Every control-plane operation that rewrites the repo config
 * or starts and stops processes runs inside `withRepoLock`, so six `zenith pg create` started together
 * read-modify-write the config one after another and pick their ports from what the previous one wrote.
 *
 * The lock is the file `<repo>/lock`, created with O_EXCL and holding `{pid, command, since}`. A second
 * command polls until it is free, reporting once that it waits (through the reporter the CLI installs),
 * and after the timeout fails naming the holder. A lock whose pid is gone (a command killed with -9) is
 * stale and is broken; breaking goes through a short-lived guard file created with O_EXCL too, so two
 * waiters cannot both break it and then both hold it.
 *
 * Nested use in one async flow (`pg start` creating its endpoint) re-enters the held lock instead of
 * waiting for itself; AsyncLocalStorage tells nested calls from concurrent ones in the same process.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import path from 'node:path'
import { type ErrorKind, ZenithError } from '../lib/errors.js'
import { isAlive } from './process.js'

export const LOCK_FILE = 'lock'
const POLL_MS = 50
/** A guard older than this was left by a process that died while breaking a stale lock. */
const GUARD_STALE_MS = 10_000

export const DEFAULT_LOCK_TIMEOUT_MS = 120_000

export interface LockHolder {
  pid: number
  command: string
  /** ISO time the lock was taken. */
  since: string
}

export class RepoLockedError extends ZenithError {
  static override kind: ErrorKind = 'timeout'
  override name = 'RepoLockedError'
}

export type LockWaitReporter = (holder: LockHolder, lockFile: string) => void

let waitReporter: LockWaitReporter | undefined

/** The CLI tells its user when a command waits for another; the control plane itself prints nothing. */
export function setLockWaitReporter(r: LockWaitReporter | undefined): void {
  waitReporter = r
}

const held = new AsyncLocalStorage<Set<string>>()

function lockTimeoutMs(): number {
  const env = process.env.ZENITH_LOCK_TIMEOUT_MS
  return env === undefined ? DEFAULT_LOCK_TIMEOUT_MS : Number(env)
}

/** Runs `fn` holding the repo dir's lock; `command` is what a waiting command is told holds it. */
export async function withRepoLock<T>(
  repoDir: string,
  command: string,
  fn: () => Promise<T>,
  opts: { timeoutMs?: number } = {},
): Promise<T> {
  const file = path.join(repoDir, LOCK_FILE)
  if (held.getStore()?.has(file)) return fn()
  await acquire(file, command, opts.timeoutMs ?? lockTimeoutMs())
  try {
    const outer = held.getStore()
    return await held.run(new Set([...(outer ?? []), file]), fn)
  } finally {
    rmSync(file, { force: true })
  }
}

async function acquire(file: string, command: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let reported = false
  for (;;) {
    if (tryCreate(file, command)) return
    const holder = readHolder(file)
    if (holder ? !isAlive(holder.pid) : olderThan(file, GUARD_STALE_MS)) {
      breakStale(file, holder)
      continue
    }
    if (holder && !reported) {
      waitReporter?.(holder, file)
      reported = true
    }
    if (Date.now() >= deadline) {
      const who = holder ? `pid ${holder.pid} (${holder.command}) since ${holder.since}` : 'another command'
      throw new RepoLockedError(`the repo dir ${path.dirname(file)} is locked by ${who}`, {
        hint: `waited ${Math.round(timeoutMs / 1000)} s; let that command finish, or stop it (the lock is ${file})`,
      })
    }
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

function tryCreate(file: string, command: string): boolean {
  let fd: number
  try {
    fd = openSync(file, 'wx', 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ZenithError(`${path.dirname(file)} does not exist`, {
        kind: 'not_found',
        hint: '`zenith init` or `zenith start` creates a repo dir',
      })
    }
    throw err
  }
  try {
    const holder: LockHolder = { pid: process.pid, command, since: new Date().toISOString() }
    writeSync(fd, JSON.stringify(holder))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return true
}

/** The holder, or undefined while it is being written (created but still empty) or already gone. */
function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as LockHolder
    return Number.isInteger(h.pid) ? h : undefined
  } catch {
    return undefined
  }
}

/** True when the file exists and was last written more than `ms` ago. */
function olderThan(file: string, ms: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > ms
  } catch {
    return false
  }
}

/**
 * Removes a lock whose holder is gone: `stale` as read, or undefined for a lock file left empty by a
 * command killed between creating and writing it.
 */
function breakStale(file: string, stale: LockHolder | undefined): void {
  const guard = `${file}.break`
  let fd: number
  try {
    fd = openSync(guard, 'wx')
  } catch {
    if (olderThan(guard, GUARD_STALE_MS)) rmSync(guard, { force: true })
    return
  }
  closeSync(fd)
  try {
    const now = readHolder(file)
    const same = stale ? now?.pid === stale.pid && now?.since === stale.since : now === undefined
    if (same) rmSync(file, { force: true })
  } finally {
    rmSync(guard, { force: true })
  }
}

/** Who holds the lock now, for status output; undefined when it is free or its holder died. */
export function lockHolder(repoDir: string): LockHolder | undefined {
  const h = readHolder(path.join(repoDir, LOCK_FILE))
  return h && isAlive(h.pid) ? h : undefined
}
