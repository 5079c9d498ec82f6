/**
 * Long work on the main thread in slices: the work asks `yield()` between steps, which lets the event
 * loop run (page reads, WAL ingest) once the slice has used its time. A GetPage request waits at most a
 * slice behind background work.
 */
export class Slicer {
  private start = performance.now()

  constructor(private readonly sliceMs: number) {}

  /** Whether the slice has used its time: `yield()` would pause. */
  get due(): boolean {
    return performance.now() - this.start > this.sliceMs
  }

  /** Lets the event loop run if the slice is used up; resolves at once otherwise. */
  async yield(): Promise<void> {
    if (!this.due) return
    await new Promise((r) => setImmediate(r))
    this.start = performance.now()
  }
}
