/**
 * Typed re-exports of the `@std/bytes` functions this project uses, from
 * the npm republication `deno-std` (see `assert.ts` for why).
 *
 * @module
 */
import * as untyped from "deno-std/bytes/mod.js";

/** Concatenates byte arrays into a new one. */
export const concat: (buffers: readonly Uint8Array[]) => Uint8Array<
  ArrayBuffer
> = untyped.concat;
