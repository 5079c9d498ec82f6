/**
 * A socket carrying protocol messages, for both ends of a connection: whole messages in, with the socket
 * paused while too much waits unread, and corked writes out.
 */
import type { Socket } from 'node:net'
import {
  encodeCopyData,
  encodeCopyDataHeader,
  type Message,
  MessageReader,
  type PiecesMessage,
  type StartupPacket,
} from './messages.js'

/** Received bytes we buffer before pausing the socket, so that a slow consumer slows the sender via TCP. */
const READ_HIGH_WATER_MARK = 1 << 20
/** CopyData payloads up to this size are copied next to their header: one write beats two for small ones. */
const COPY_DATA_INLINE_LIMIT = 16 * 1024
/** How long close() lets a peer that does not read take the last bytes before the socket is destroyed. */
const CLOSE_GRACE_MS = 5_000

/**
 * A socket carrying protocol messages, for both ends. Reading pulls whole messages and pauses the socket
 * while more than READ_HIGH_WATER_MARK bytes wait unread. Writing corks the socket until the next tick so
 * that the many small messages of one reply go out in one writev. Socket errors never throw: they are kept
 * in `error`, and reading then reports the end of the stream.
 */
export class MessageSocket {
  readonly reader: MessageReader
  private waiters: (() => void)[] = []
  private paused = false
  private ended = false
  private corked = false
  private closing = false
  private drainWaitCount = 0
  private socketError: Error | undefined
  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk)
    // A waiting reader needs more bytes (its message is incomplete, however large): keep them coming.
    if (!this.paused && this.waiters.length === 0 && this.reader.bufferedBytes >= READ_HIGH_WATER_MARK) {
      this.paused = true
      this.socket.pause()
    }
    this.wake()
  }

  constructor(readonly socket: Socket) {
    this.reader = new MessageReader()
    socket.on('data', this.onData)
    socket.on('error', (err) => {
      this.socketError ??= err
    })
    socket.on('end', () => {
      this.ended = true
      this.wake()
    })
    socket.on('close', () => {
      this.ended = true
      this.wake()
    })
  }

  /** The first error the socket reported, if any. */
  get error(): Error | undefined {
    return this.socketError
  }

  /** True once close() was called or the socket is gone: nothing more can be sent. */
  get closed(): boolean {
    return this.closing || this.socket.destroyed || !this.socket.writable
  }

  /** How many times drain() had to wait for the peer to take data. */
  get drainWaits(): number {
    return this.drainWaitCount
  }

  /** Next typed message; null once the peer closed or the socket failed (a partial message is dropped). */
  next(): Promise<Message | null> {
    return this.receive(() => this.reader.next())
  }

  /** next() with the body as views of the chunks it arrived in (MessageReader.nextPieces). */
  nextPieces(): Promise<PiecesMessage | null> {
    return this.receive(() => this.reader.nextPieces())
  }

  /** Next startup-phase packet; null once the peer closed or the socket failed. */
  nextStartup(): Promise<StartupPacket | null> {
    return this.receive(() => this.reader.nextStartup())
  }

  private async receive<T>(pull: () => T | null): Promise<T | null> {
    for (;;) {
      const m = pull()
      if (m !== null) {
        if (this.paused && this.reader.bufferedBytes < READ_HIGH_WATER_MARK / 2) this.resume()
        return m
      }
      if (this.ended || this.closing || this.socket.destroyed) return null
      // Whatever is buffered is an incomplete message (maybe a big one): it needs more bytes.
      this.resume()
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  private resume(): void {
    if (!this.paused) return
    this.paused = false
    this.socket.resume()
  }

  private wake(): void {
    const waiters = this.waiters
    if (waiters.length === 0) return
    this.waiters = []
    for (const w of waiters) w()
  }

  write(buf: Buffer): void {
    if (this.closed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(() => this.flush())
    }
    this.socket.write(buf)
  }

  /** A CopyData message; a large payload is written as it is, after its header, without a copy. */
  writeCopyData(payload: Buffer): void {
    if (payload.length <= COPY_DATA_INLINE_LIMIT) {
      this.write(encodeCopyData(payload))
      return
    }
    this.write(encodeCopyDataHeader(payload.length))
    this.write(payload)
  }

  /** Sends what the cork holds back now instead of at the next tick. */
  flush(): void {
    if (!this.corked) return
    this.corked = false
    this.socket.uncork()
  }

  /** Resolves once the socket's write buffer is below its highWaterMark again, or the socket is gone. */
  async drain(): Promise<void> {
    this.flush()
    if (this.closed || !this.socket.writableNeedDrain) return
    this.drainWaitCount++
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done)
        this.socket.off('close', done)
        resolve()
      }
      this.socket.on('drain', done)
      this.socket.on('close', done)
    })
  }

  /** Sends what is queued and ends the connection; a peer that never reads loses it after a grace period. */
  close(): void {
    if (this.closing) return
    this.flush()
    this.closing = true
    if (this.socket.destroyed) return
    this.socket.end()
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS)
    timer.unref()
    this.socket.once('close', () => clearTimeout(timer))
    // Nobody reads any more: a paused socket would hold the peer's FIN back and the close would wait for the
    // timer; flowing without our listener, whatever still arrives is dropped.
    this.socket.off('data', this.onData)
    this.resume()
    this.wake()
  }

  destroy(): void {
    this.closing = true
    this.socket.destroy()
  }
}
