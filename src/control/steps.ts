/**
 * A multi-step operation as a list of titled steps, so the command can show it as listr2 progress on a
 * TTY or as plain lines otherwise, while the work itself stays here where tests call it. A step may
 * return a new title that says what it did ("basebackup at 0/16B3748: 31.4 MiB"), and a long one may
 * show how it is going on the way (`progress`), which only a live display (listr2 on a TTY) shows.
 */
export interface Step {
  title: string
  /** Resolves to the step's final title, or to anything else to keep the title it had. */
  run: (progress: (title: string) => void) => Promise<unknown>
}

const unseen = () => undefined

/** Runs steps in order; `onDone` hears each finished step's title (plain-line output). */
export async function runSteps(steps: readonly Step[], onDone?: (title: string) => void): Promise<string[]> {
  const done: string[] = []
  for (const s of steps) {
    const title = titleAfter(s, await s.run(unseen))
    done.push(title)
    onDone?.(title)
  }
  return done
}

export function titleAfter(step: Step, result: unknown): string {
  return typeof result === 'string' && result !== '' ? result : step.title
}
