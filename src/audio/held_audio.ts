/**
 * Audio kept while its destination is not ready yet (a vendor session
 * being set up): the newest up to a byte budget, the oldest dropped.
 *
 * @module
 */

/**
 * Holds chunks, dropping the oldest past `maxBytes` (always keeping the
 * newest), until {@linkcode HeldAudio.take} hands them over.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const held = new HeldAudio(4);
 * held.push(new Uint8Array(2));
 * held.push(new Uint8Array(2));
 * held.push(new Uint8Array(2));
 * assertEquals(held.take().length, 2);
 * assertEquals(held.take().length, 0);
 * ```
 */
export class HeldAudio {
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #maxBytes: number;

  /** Keeps at most `maxBytes` (at least the newest chunk). */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Holds `chunk` (by reference: pass a copy of a buffer that is reused). */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.#maxBytes && this.#chunks.length > 1) {
      this.#bytes -= (this.#chunks.shift() as Uint8Array).length;
    }
  }

  /** The held chunks, oldest first; nothing is held afterwards. */
  take(): Uint8Array[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    return chunks;
  }
}
