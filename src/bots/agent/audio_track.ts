/**
 * The audio of one spoken piece as it is synthesised: written once, read by
 * the player while it grows, and kept whole for the cache. Pure.
 *
 * @module
 */

/** Observers of one {@linkcode AudioTrack.reader}. */
export interface TrackReaderOptions {
  /** Called after each piece is handed out, with the bytes handed out so far. */
  onRead?(totalBytes: number): void;
  /** Called once when the reader reaches the end of the track. */
  onEnd?(totalBytes: number): void;
}

/**
 * Growing PCM with any number of readers. Readers never throw: a track that
 * failed simply ends, so the player (which must not see errors) finishes the
 * piece with what there was.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const track = new AudioTrack();
 * const reader = track.reader(); // starts before the audio is there
 * track.append(new Uint8Array(320));
 * track.append(new Uint8Array(640));
 * track.end();
 * const sizes: number[] = [];
 * for await (const pcm of reader) sizes.push(pcm.length);
 * assertEquals(sizes.reduce((a, b) => a + b, 0), 960);
 * assertEquals(track.bytes, 960);
 * ```
 */
export class AudioTrack {
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ended = false;
  #error: unknown;
  #wakers = new Set<() => void>();

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether no more audio will come. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Why the track ended early, if it failed. */
  get error(): unknown {
    return this.#error;
  }

  /** Adds PCM; ignored once ended. */
  append(pcm: Uint8Array): void {
    if (this.#ended || pcm.length === 0) return;
    this.#chunks.push(pcm);
    this.#bytes += pcm.length;
    this.#wake();
  }

  /** Marks the audio complete. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake();
  }

  /** Ends the track early because synthesis failed. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error;
    this.end();
  }

  /** All audio written so far, in one array. */
  pcm(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0];
    const all = new Uint8Array(this.#bytes);
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    this.#chunks = [all];
    return all;
  }

  /** Reads the track from the start, waiting for audio as it is written, until it ends or the reader is returned. */
  reader(options: TrackReaderOptions = {}): AsyncIterable<Uint8Array> {
    return { [Symbol.asyncIterator]: () => this.#iterate(options) };
  }

  #iterate(options: TrackReaderOptions): AsyncIterator<Uint8Array> {
    let given = 0;
    let done = false;
    let wake: (() => void) | undefined;
    const next = async (): Promise<IteratorResult<Uint8Array>> => {
      while (!done) {
        if (given < this.#bytes) {
          const pcm = this.#after(given);
          given += pcm.length;
          options.onRead?.(given);
          return { done: false, value: pcm };
        }
        if (this.#ended) {
          done = true;
          options.onEnd?.(given);
          break;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#wakers.add(resolve);
        });
        wake = undefined;
      }
      return { done: true, value: undefined };
    };
    return {
      next,
      return: () => {
        done = true;
        if (wake) {
          this.#wakers.delete(wake);
          wake();
        }
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** The audio written after the first `given` bytes, up to the end of its chunk. */
  #after(given: number): Uint8Array {
    let offset = 0;
    for (const chunk of this.#chunks) {
      if (given < offset + chunk.length) return chunk.subarray(given - offset);
      offset += chunk.length;
    }
    return new Uint8Array(0);
  }

  #wake(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const resolve of wakers) resolve();
  }
}
