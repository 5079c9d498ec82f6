/**
 * Batched line output with backpressure: wal dump prints hundreds of thousands of lines, and one
 * write() per line would be slower than decoding them. A closed pipe (`zenith wal dump | head`) ends
 * the output quietly instead of failing.
 */
import type { Writable } from 'node:stream'

const FLUSH_AT = 64 * 1024

export class LineWriter {
  private buf: string[] = []
  private size = 0
  private closed = false

  constructor(private readonly out: Writable) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.closed = true
      else throw err
    })
  }

  /** False once the reader has gone away: callers may stop producing. */
  get open(): boolean {
    return !this.closed
  }

  async line(text: string): Promise<void> {
    if (this.closed) return
    this.buf.push(text)
    this.size += text.length + 1
    if (this.size >= FLUSH_AT) await this.flush()
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0 || this.closed) return
    const chunk = `${this.buf.join('\n')}\n`
    this.buf = []
    this.size = 0
    if (!this.out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.out.off('drain', done)
          this.out.off('close', done)
          resolve()
        }
        this.out.on('drain', done)
        this.out.on('close', done)
      })
    }
  }
}
