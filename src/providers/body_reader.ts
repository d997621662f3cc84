/**
 * Reads a streamed HTTP body into pieces that own just their bytes.
 *
 * Deno's `fetch` hands each network read to a default reader as a view
 * into a fresh 64 KiB buffer, however few bytes came: a 320-byte piece of
 * audio, or a model's token, holds 64 KiB. Text-to-speech audio is kept
 * until it has been played, so at 200 agent calls (`deno task
 * bench:agents`) the server held about 100 MB of such buffers and RSS was
 * 1.2 MiB per call. Even buffers dropped at once cost: with the start
 * task's V8 heap, measured here, they were freed only by full collections,
 * and the model's streamed answers alone (a read per token) grew external
 * memory by about 20 MB/s at 200 calls, which started a full collection
 * every 17 s; reading them here too brought that to one every 50 s. Reading into one buffer of our own
 * (a BYOB reader, where the body is a byte stream) and copying out each
 * piece's bytes keeps only what the vendor sent.
 *
 * @module
 */

/** Bytes read at most at once. */
const READ_BYTES = 16 * 1024;

/**
 * Pieces of a body, in order, each a compact copy.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const response = new Response("audio bytes");
 * const reader = BodyReader.of(response.body!);
 * const piece = await reader.read();
 * assertEquals(new TextDecoder().decode(piece), "audio bytes");
 * assertEquals(piece?.buffer.byteLength, piece?.length);
 * assertEquals(await reader.read(), undefined);
 * ```
 */
export class BodyReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #default: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buffer: ArrayBuffer | undefined;

  private constructor(stream: ReadableStream<Uint8Array>) {
    try {
      this.#byob = stream.getReader({ mode: "byob" });
      this.#buffer = new ArrayBuffer(READ_BYTES);
    } catch (error) {
      // Not a byte stream (a body built from a plain stream, say).
      if (!(error instanceof TypeError)) throw error;
      this.#default = stream.getReader();
    }
  }

  /** Starts reading `stream`, which it locks. */
  static of(stream: ReadableStream<Uint8Array>): BodyReader {
    return new BodyReader(stream);
  }

  /** The next non-empty piece, or `undefined` once the body has ended. */
  async read(): Promise<Uint8Array | undefined> {
    while (true) {
      const piece = await this.#next();
      if (piece === undefined || piece.length > 0) return piece;
    }
  }

  /** Stops reading; the body is cancelled. */
  async cancel(): Promise<void> {
    await (this.#byob ?? this.#default)?.cancel().catch(() => {});
  }

  async #next(): Promise<Uint8Array | undefined> {
    if (this.#default) {
      const { done, value } = await this.#default.read();
      if (done) return undefined;
      return value.buffer.byteLength > 2 * value.length ? value.slice() : value;
    }
    const { done, value } = await this.#byob!.read(
      new Uint8Array(this.#buffer!),
    );
    if (value === undefined) return undefined;
    // The buffer comes back (transferred) with the bytes read in it.
    this.#buffer = value.buffer as ArrayBuffer;
    return done && value.length === 0 ? undefined : value.slice();
  }
}
