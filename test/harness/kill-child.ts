/**
 * The parent side of a kill -9 test: runs a child script (node --import tsx) that prints `<what> <value>`
 * lines, hands each line to the test, which kills the child with SIGKILL when the moment it wants has
 * come, and resolves with the last value of each `what` once the kill ended the process.
 *
 *     const run = await runUntilKilled(CHILD, [dir], (what, value, kill) => {
 *       if (what === 'ready') setTimeout(kill, 500)
 *     })
 *     run.last.get('dcl')
 */
import { spawn } from 'node:child_process'

export interface KilledRun {
  /** The last value printed for each `what`. */
  last: Map<string, string>
  lines: number
}

export type LineHandler = (what: string, value: string, kill: () => void) => void

/**
 * Runs `script` until the handler kills it. A child that exits on its own, or is not killed within
 * `timeoutMs` (then it is killed anyway), rejects with its stderr.
 */
export function runUntilKilled(
  script: string,
  args: readonly string[],
  onLine: LineHandler,
  timeoutMs = 60_000,
): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const last = new Map<string, string>()
    let lines = 0
    let stderr = ''
    let buf = ''
    let timedOut = false
    const kill = () => child.kill('SIGKILL')
    const timer = setTimeout(() => {
      timedOut = true
      kill()
    }, timeoutMs)
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-8000)
    })
    child.stdout.on('data', (d) => {
      buf += d
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        lines++
        const sp = line.indexOf(' ')
        const what = sp < 0 ? line : line.slice(0, sp)
        const value = sp < 0 ? '' : line.slice(sp + 1)
        last.set(what, value)
        onLine(what, value, kill)
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) reject(new Error(`${script} was not killed within ${timeoutMs} ms: ${stderr}`))
      else if (signal === 'SIGKILL') resolve({ last, lines })
      else reject(new Error(`${script} exited with ${code ?? signal} before it was killed: ${stderr}`))
    })
  })
}
