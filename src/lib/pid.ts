/**
 * Whether a process exists, as pid files (the servers', Postgres' postmaster.pid) are checked: signal 0,
 * except that a zombie counts as gone.
 */
import { readFileSync } from 'node:fs'

/** Signal 0 reaches it (EPERM counts: the process exists) and it has not exited. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  return !isZombie(pid)
}

/**
 * A zombie has exited and only waits for its parent to reap it, yet signal 0 still reaches it; waiting
 * for it to exit would wait for its parent instead. Linux only: elsewhere zombies count as alive.
 */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name in parentheses may itself contain ') ', so the state follows the last one.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch {
    return false
  }
}
