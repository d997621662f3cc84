/**
 * One shape for audio a reader takes piece by piece: what the player plays,
 * whether it was given whole, as an async iterable (a TTS stream) or as a
 * live pipe (the echo). Reading never awaits; the source says when there is
 * more, so a live stream costs no promise per piece.
 *
 * @module
 */

/**
 * PCM read piece by piece without awaiting, with word of every new piece.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { toPcmSource } from "./pcm_source.ts";
 *
 * const source = toPcmSource(new Uint8Array(640));
 * assertEquals(source.read()?.length, 640);
 * assertEquals(source.read(), undefined);
 * assertEquals(source.done, true);
 * ```
 */
export interface PcmSource {
  /** Takes the oldest unread piece, or `undefined` when none is there yet. */
  read(): Uint8Array | undefined;
  /** True once the source has ended and everything in it has been read. */
  readonly done: boolean;
  /**
   * Calls `listener` synchronously after every piece that arrives and when
   * the source ends, until another listener or `undefined` replaces it.
   */
  listen(listener: (() => void) | undefined): void;
  /**
   * The reader wants no more: the source ends, drops what it holds and
   * lets its producer go (an async iterator is returned).
   */
  cancel(): void;
}

/** Options of {@linkcode toPcmSource}. */
export interface PcmSourceOptions {
  /**
   * Hears of an async iterable that throws; the source then ends with what
   * it had read. Absent, the error is dropped.
   */
  onError?(error: unknown): void;
}

/**
 * True for audio that already is a {@linkcode PcmSource}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { PcmPipe } from "./pcm_pipe.ts";
 *
 * assertEquals(isPcmSource(new PcmPipe({ maxBytes: 3200 })), true);
 * assertEquals(isPcmSource(new Uint8Array(320)), false);
 * ```
 */
export function isPcmSource(audio: unknown): audio is PcmSource {
  if (typeof audio !== "object" || audio === null) return false;
  const source = audio as Partial<PcmSource>;
  return typeof source.read === "function" &&
    typeof source.listen === "function" &&
    typeof source.cancel === "function";
}

/**
 * Makes a {@linkcode PcmSource} of any audio: bytes are one piece; a
 * {@linkcode PcmSource} is itself; an async iterable is pulled one piece at a
 * time, only when the reader has taken the last one, so a slow reader slows
 * the producer instead of buffering it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * async function* speech() {
 *   yield new Uint8Array(320);
 *   yield new Uint8Array(640);
 * }
 * const source = toPcmSource(speech());
 * const pieces: number[] = [];
 * await new Promise<void>((resolve) => {
 *   const take = () => {
 *     for (let pcm = source.read(); pcm; pcm = source.read()) {
 *       pieces.push(pcm.length);
 *     }
 *     if (source.done) resolve();
 *   };
 *   source.listen(take);
 *   take();
 * });
 * assertEquals(pieces, [320, 640]);
 * ```
 */
export function toPcmSource(
  audio: Uint8Array | AsyncIterable<Uint8Array> | PcmSource,
  options: PcmSourceOptions = {},
): PcmSource {
  if (audio instanceof Uint8Array) return new BytesSource(audio);
  if (isPcmSource(audio)) return audio;
  return new IterableSource(audio, options.onError);
}

/** Audio given whole: one piece. */
class BytesSource implements PcmSource {
  #pcm: Uint8Array | undefined;

  constructor(pcm: Uint8Array) {
    this.#pcm = pcm;
  }

  read(): Uint8Array | undefined {
    const pcm = this.#pcm;
    this.#pcm = undefined;
    return pcm;
  }

  get done(): boolean {
    return this.#pcm === undefined;
  }

  listen(): void {
    // Everything is there from the start: there is never news.
  }

  cancel(): void {
    this.#pcm = undefined;
  }
}

/** An async iterable, pulled on demand. */
class IterableSource implements PcmSource {
  #iterable: AsyncIterable<Uint8Array>;
  #iterator?: AsyncIterator<Uint8Array>;
  #onError?: (error: unknown) => void;
  #piece?: Uint8Array;
  #pulling = false;
  #ended = false;
  #listener?: () => void;

  constructor(
    iterable: AsyncIterable<Uint8Array>,
    onError: ((error: unknown) => void) | undefined,
  ) {
    this.#iterable = iterable;
    this.#onError = onError;
  }

  read(): Uint8Array | undefined {
    const piece = this.#piece;
    if (piece !== undefined) {
      this.#piece = undefined;
      return piece;
    }
    if (!this.#pulling && !this.#ended) void this.#pull();
    return undefined;
  }

  get done(): boolean {
    return this.#ended && this.#piece === undefined;
  }

  listen(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }

  cancel(): void {
    if (this.#ended && this.#iterator === undefined) return;
    this.#ended = true;
    this.#piece = undefined;
    const iterator = this.#iterator;
    this.#iterator = undefined;
    try {
      iterator?.return?.().catch(() => {});
    } catch {
      // A producer that cannot be stopped is let go all the same.
    }
  }

  async #pull(): Promise<void> {
    this.#pulling = true;
    try {
      this.#iterator ??= this.#iterable[Symbol.asyncIterator]();
      const next = await this.#iterator.next();
      if (this.#ended) return;
      if (next.done) this.#end();
      else this.#piece = next.value;
    } catch (error) {
      if (this.#ended) return;
      this.#end();
      this.#onError?.(error);
    } finally {
      this.#pulling = false;
    }
    this.#listener?.();
  }

  /** Ends after the producer did: nothing is left to return. */
  #end(): void {
    this.#ended = true;
    this.#iterator = undefined;
  }
}
