/** Waiting in tests for something another process does: polled, with a deadline that names what failed. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` until it returns a value (not undefined), which it resolves with. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(25)
  }
}

/** Polls `cond` until it holds. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  await waitFor(what, async () => ((await cond()) ? true : undefined), ms)
}
