/**
 * Typed re-exports of the `@std/crypto` functions this project uses, from
 * the npm republication `deno-std` (see `assert.ts` for why).
 *
 * @module
 */
import * as untyped from "deno-std/crypto/timing_safe_equal.js";

/**
 * Compares two buffers of equal byte length in time that depends only on
 * that length.
 *
 * @throws {TypeError} when the byte lengths differ.
 */
export const timingSafeEqual: (
  a: ArrayBufferView | ArrayBufferLike | DataView,
  b: ArrayBufferView | ArrayBufferLike | DataView,
) => boolean = untyped.timingSafeEqual;
