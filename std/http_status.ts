/**
 * Typed re-export of `@std/http/status`'s `STATUS_TEXT`, from the untyped npm
 * republication of std (JSR is out of reach from our machines).
 *
 * @module
 */
import * as untyped from "deno-std/http/status.js";

/** The reason phrase of every standard HTTP status code. */
export const STATUS_TEXT: Readonly<Record<number, string>> =
  untyped.STATUS_TEXT;
