/**
 * A bounded pipe from code that pushes PCM to code that pulls it as an async
 * iterable, such as the player.
 *
 * @module
 */

/**
 * Pushed PCM, pulled with `for await`. When the reader falls behind by more
 * than `maxBytes`, the oldest audio is dropped (and counted) rather than
 * letting memory grow: late audio on a phone call is worth nothing.
 *
 * @example
 * ```ts
 * const pipe = new PcmPipe({ maxBytes: 64_000 });
 * pipe.push(new Uint8Array(320));
 * pipe.close();
 * for await (const pcm of pipe) pcm.length; // 320
 * ```
 */
export class PcmPipe implements AsyncIterable<Uint8Array> {
  #pieces: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #maxBytes: number;
  #closed = false;
  #waiting?: (result: IteratorResult<Uint8Array>) => void;
  /** Bytes dropped because the reader fell behind. */
  droppedBytes = 0;

  /** Creates a pipe holding at most `maxBytes` unread. */
  constructor(options: { maxBytes: number }) {
    this.#maxBytes = options.maxBytes;
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
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#pieces[this.#head++];
      this.#bytes -= oldest.length;
      this.droppedBytes += oldest.length;
    }
    if (this.#head > 64 && this.#head * 2 > this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Ends the stream once what is buffered has been read. */
  close(): void {
    this.#closed = true;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: true, value: undefined });
    }
  }

  /** Reads pieces in order until closed. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        if (this.#head < this.#pieces.length) {
          const value = this.#pieces[this.#head];
          this.#pieces[this.#head++] = EMPTY;
          this.#bytes -= value.length;
          return Promise.resolve({ done: false, value });
        }
        if (this.#closed) {
          return Promise.resolve({ done: true, value: undefined });
        }
        return new Promise((resolve) => this.#waiting = resolve);
      },
      return: () => {
        this.close();
        this.#pieces = [];
        this.#head = 0;
        this.#bytes = 0;
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

const EMPTY = new Uint8Array(0);
