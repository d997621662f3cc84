/**
 * Sizes, durations and chunking of 16-bit linear PCM, the only audio Exotel
 * carries. Pure: no I/O, no clocks.
 *
 * @module
 */

/** Sample rates Exotel streams at. */
export const SAMPLE_RATES = [8000, 16000, 24000] as const;

/** A sample rate Exotel streams at. */
export type SampleRate = typeof SAMPLE_RATES[number];

/** Bytes per 16-bit mono sample. */
export const BYTES_PER_SAMPLE = 2;

/** Every outbound chunk must be a multiple of this many bytes (20 ms at 8 kHz). */
export const CHUNK_ALIGN_BYTES = 320;

/** Smallest outbound chunk Exotel plays without jitter. */
export const MIN_CHUNK_BYTES: number = CHUNK_ALIGN_BYTES;

/** Largest outbound chunk Exotel accepts before timing out. */
export const MAX_CHUNK_BYTES = 100_000;

/** The chunk size Exotel recommends. */
export const DEFAULT_CHUNK_BYTES = 3200;

/** Returns true when `rate` is a rate Exotel streams at. */
export function isSampleRate(rate: number): rate is SampleRate {
  return (SAMPLE_RATES as readonly number[]).includes(rate);
}

/**
 * Bytes of PCM that play for one millisecond at `sampleRate`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(bytesPerMs(8000), 16);
 * ```
 */
export function bytesPerMs(sampleRate: number): number {
  return sampleRate * BYTES_PER_SAMPLE / 1000;
}

/**
 * How long `bytes` of PCM play at `sampleRate`, in milliseconds.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(durationMs(3200, 8000), 200);
 * assertEquals(durationMs(3200, 16000), 100);
 * ```
 */
export function durationMs(bytes: number, sampleRate: number): number {
  return bytes / bytesPerMs(sampleRate);
}

/** How many bytes of PCM play for `ms` milliseconds at `sampleRate`, whole samples only. */
export function bytesForMs(ms: number, sampleRate: number): number {
  return Math.round(ms * sampleRate / 1000) * BYTES_PER_SAMPLE;
}

/** Rounds `bytes` up to the next multiple of {@linkcode CHUNK_ALIGN_BYTES}. */
export function alignUp(bytes: number): number {
  return Math.ceil(bytes / CHUNK_ALIGN_BYTES) * CHUNK_ALIGN_BYTES;
}

/** Returns true when `bytes` is a size Exotel plays without a gap. */
export function isValidChunkSize(bytes: number): boolean {
  return bytes >= MIN_CHUNK_BYTES && bytes <= MAX_CHUNK_BYTES &&
    bytes % CHUNK_ALIGN_BYTES === 0;
}

/**
 * Returns `pcm` padded with silence (zero bytes) to a multiple of
 * {@linkcode CHUNK_ALIGN_BYTES}, or `pcm` itself when it already is one.
 */
export function padToAlignment(pcm: Uint8Array): Uint8Array {
  const size = alignUp(pcm.length);
  if (size === pcm.length) return pcm;
  const padded = new Uint8Array(size);
  padded.set(pcm);
  return padded;
}

/**
 * Splits `pcm` into chunks of `chunkBytes`, the last one padded with silence
 * to a multiple of {@linkcode CHUNK_ALIGN_BYTES}. For audio that arrives in
 * pieces use {@linkcode Chunker}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const chunks = chunkPcm(new Uint8Array(7000), 3200);
 * assertEquals(chunks.map((c) => c.length), [3200, 3200, 640]);
 * ```
 */
export function chunkPcm(pcm: Uint8Array, chunkBytes: number): Uint8Array[] {
  const chunker = new Chunker(chunkBytes);
  const chunks = chunker.push(pcm);
  const last = chunker.flush();
  if (last) chunks.push(last);
  return chunks;
}

/** Error thrown for a chunk size Exotel cannot play cleanly. */
export class InvalidChunkSizeError extends RangeError {
  /** Creates the error for `bytes`. */
  constructor(bytes: number) {
    super(
      `Invalid chunk size "${bytes}": expected a multiple of ${CHUNK_ALIGN_BYTES} from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}`,
    );
    this.name = "InvalidChunkSizeError";
  }
}

/**
 * Cuts PCM that arrives in pieces of any size into chunks of exactly
 * `chunkBytes`, keeping the remainder for the next push.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const chunker = new Chunker(3200);
 * // One whole chunk goes out; the 1800 bytes left wait for more audio.
 * assertEquals(chunker.push(new Uint8Array(5000)).map((c) => c.length), [3200]);
 * // At the end they are padded with silence to a multiple of 320.
 * assertEquals(chunker.flush()?.length, 1920);
 * ```
 */
export class Chunker {
  #chunkBytes: number;
  /** The first chunk goes out once this much is there; later ones are whole. */
  #firstBytes: number;
  #emitted = false;
  /** Made on first need: a stream whose pieces are whole chunks never needs it. */
  #pending?: Uint8Array;
  #filled = 0;

  /**
   * Creates a chunker emitting chunks of `chunkBytes`. With
   * `options.firstChunkBytes` (a multiple of {@linkcode CHUNK_ALIGN_BYTES})
   * the first chunk is sent as soon as that much has arrived, so the first
   * words of a streamed voice do not wait for a whole chunk to be
   * synthesised; it holds what has arrived, up to `chunkBytes`, whole
   * 20 ms packets only.
   */
  constructor(chunkBytes: number, options: { firstChunkBytes?: number } = {}) {
    if (!isValidChunkSize(chunkBytes)) {
      throw new InvalidChunkSizeError(chunkBytes);
    }
    this.#chunkBytes = chunkBytes;
    const first = options.firstChunkBytes ?? chunkBytes;
    if (!isValidChunkSize(first)) throw new InvalidChunkSizeError(first);
    this.#firstBytes = Math.min(first, chunkBytes);
  }

  /** Bytes kept back, waiting for a full chunk. */
  get buffered(): number {
    return this.#filled;
  }

  /**
   * Adds `pcm` and returns the whole chunks it completes. Chunks that lie
   * within `pcm` are views of it, not copies (this runs for every frame):
   * do not change `pcm` afterwards.
   */
  push(pcm: Uint8Array): Uint8Array[] {
    // A piece that is exactly one chunk (the echo's usual frame) is that chunk.
    if (this.#filled === 0 && pcm.length === this.#chunkBytes) {
      this.#emitted = true;
      return [pcm];
    }
    if (!this.#emitted && this.#firstBytes < this.#chunkBytes) {
      return this.#pushFirst(pcm);
    }
    const chunks: Uint8Array[] = [];
    let offset = 0;
    if (this.#filled > 0) {
      const pending = this.#pending!;
      const take = Math.min(this.#chunkBytes - this.#filled, pcm.length);
      pending.set(pcm.subarray(0, take), this.#filled);
      this.#filled += take;
      offset = take;
      if (this.#filled < this.#chunkBytes) return chunks;
      chunks.push(pending);
      this.#pending = undefined;
      this.#filled = 0;
    }
    while (pcm.length - offset >= this.#chunkBytes) {
      chunks.push(pcm.subarray(offset, offset + this.#chunkBytes));
      offset += this.#chunkBytes;
    }
    if (offset < pcm.length) {
      this.#pending ??= new Uint8Array(this.#chunkBytes);
      this.#pending.set(pcm.subarray(offset), 0);
      this.#filled = pcm.length - offset;
    }
    return chunks;
  }

  /** Before the first chunk: emits it early once `#firstBytes` are there. */
  #pushFirst(pcm: Uint8Array): Uint8Array[] {
    const total = this.#filled + pcm.length;
    if (total < this.#firstBytes) {
      this.#pending ??= new Uint8Array(this.#chunkBytes);
      this.#pending.set(pcm, this.#filled);
      this.#filled = total;
      return [];
    }
    this.#emitted = true;
    const size = Math.min(
      this.#chunkBytes,
      total - (total % CHUNK_ALIGN_BYTES),
    );
    // Less than `#firstBytes` is held, so all of it goes into the first chunk.
    const held = this.#filled;
    const first = new Uint8Array(size);
    if (held > 0) first.set(this.#pending!.subarray(0, held));
    first.set(pcm.subarray(0, size - held), held);
    this.#filled = 0;
    const rest = pcm.subarray(size - held);
    return rest.length > 0 ? [first, ...this.push(rest)] : [first];
  }

  /**
   * Returns what is kept back padded with silence to a multiple of
   * {@linkcode CHUNK_ALIGN_BYTES}, or `undefined` when nothing is.
   */
  flush(): Uint8Array | undefined {
    if (this.#filled === 0) return undefined;
    const last = new Uint8Array(alignUp(this.#filled));
    last.set(this.#pending!.subarray(0, this.#filled));
    this.#filled = 0;
    return last;
  }

  /** Drops what is kept back. */
  reset(): void {
    this.#filled = 0;
    this.#emitted = false;
  }
}
