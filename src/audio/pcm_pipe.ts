/**
 * A bounded pipe from code that pushes PCM to code that reads it as it is
 * pushed (the player, through {@linkcode PcmSource}) or pulls it as an async
 * iterable.
 *
 * @module
 */

import type { PcmSource } from "./pcm_source.ts";

/**
 * Pushed PCM, read as a {@linkcode PcmSource} or pulled with `for await`.
 * When the reader falls behind by more than `maxBytes`, the oldest audio is
 * dropped (and counted) rather than letting memory grow: late audio on a
 * phone call is worth nothing.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const pipe = new PcmPipe({ maxBytes: 64_000 });
 * pipe.push(new Uint8Array(320));
 * pipe.push(new Uint8Array(640));
 * assertEquals(pipe.read()?.length, 320); // as a PcmSource: no awaiting
 * pipe.close();
 * const rest: number[] = [];
 * for await (const pcm of pipe) rest.push(pcm.length);
 * assertEquals(rest, [640]);
 * ```
 */
export class PcmPipe implements PcmSource, AsyncIterable<Uint8Array> {
  #pieces: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #maxBytes: number;
  #closed = false;
  #waiting?: (result: IteratorResult<Uint8Array>) => void;
  #listener?: () => void;
  #onDrop?: (bytes: number) => void;
  /** Bytes dropped because the reader fell behind. */
  droppedBytes = 0;

  /**
   * Creates a pipe holding at most `maxBytes` unread; `onDrop` hears of
   * every push that had to drop old audio, with the bytes it dropped.
   */
  constructor(
    options: { maxBytes: number; onDrop?: (bytes: number) => void },
  ) {
    this.#maxBytes = options.maxBytes;
    this.#onDrop = options.onDrop;
  }

  /** Bytes pushed and not yet read. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /** Adds `pcm`; ignored after {@linkcode PcmPipe.close}. */
  push(pcm: Uint8Array): void {
    if (this.#closed || pcm.length === 0) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: false, value: pcm });
      return;
    }
    this.#pieces.push(pcm);
    this.#bytes += pcm.length;
    if (this.#bytes > this.#maxBytes) this.#dropOldest();
    if (this.#head > 64 && this.#head * 2 > this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
    this.#listener?.();
  }

  /** Drops the oldest pieces until what is buffered fits `maxBytes`. */
  #dropOldest(): void {
    let dropped = 0;
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#pieces[this.#head];
      this.#pieces[this.#head++] = EMPTY;
      this.#bytes -= oldest.length;
      dropped += oldest.length;
    }
    this.droppedBytes += dropped;
    this.#onDrop?.(dropped);
  }

  /** True once closed and everything pushed has been read. */
  get done(): boolean {
    return this.#closed && this.#head === this.#pieces.length;
  }

  /** Takes the oldest unread piece, or `undefined` when none is buffered. */
  read(): Uint8Array | undefined {
    if (this.#head === this.#pieces.length) return undefined;
    const value = this.#pieces[this.#head];
    this.#head++;
    this.#bytes -= value.length;
    if (this.#head === this.#pieces.length) {
      // Read as fast as pushed, the usual case: the array never grows.
      this.#pieces.length = 0;
      this.#head = 0;
    } else {
      this.#pieces[this.#head - 1] = EMPTY;
    }
    return value;
  }

  /** See {@linkcode PcmSource.listen}. */
  listen(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }

  /** The reader stops: closes the pipe and drops what is buffered; later pushes are ignored. */
  cancel(): void {
    this.close();
    this.#pieces = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  /** Ends the stream once what is buffered has been read. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: true, value: undefined });
    }
    this.#listener?.();
  }

  /** Reads pieces in order until closed. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const value = this.read();
        if (value !== undefined) {
          return Promise.resolve({ done: false, value });
        }
        if (this.#closed) {
          return Promise.resolve({ done: true, value: undefined });
        }
        return new Promise((resolve) => this.#waiting = resolve);
      },
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

const EMPTY = new Uint8Array(0);
