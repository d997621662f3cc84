/**
 * Re-cuts a byte stream so every piece holds whole 16-bit samples. Pure.
 *
 * @module
 */

/**
 * Yields the bytes of `source` in pieces of even length. A piece that ends
 * mid-sample keeps its last byte back and puts it in front of the next piece;
 * a lone byte left when the source ends is dropped, as it is half a sample.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const odd = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])];
 * // 5 is half a sample at the end: dropped.
 * assertEquals(await Array.fromAsync(evenPieces(odd)), [
 *   new Uint8Array([1, 2]),
 *   new Uint8Array([3, 4]),
 * ]);
 * ```
 */
export async function* evenPieces(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let carry: number | undefined;
  for await (const piece of source) {
    if (piece.length === 0) continue;
    let bytes = piece;
    if (carry !== undefined) {
      bytes = new Uint8Array(piece.length + 1);
      bytes[0] = carry;
      bytes.set(piece, 1);
      carry = undefined;
    }
    if (bytes.length % 2 === 1) {
      carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length > 0) yield bytes;
  }
}
