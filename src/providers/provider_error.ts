/**
 * The error every provider adapter throws, whatever went wrong on the wire.
 *
 * @module
 */

/** Why a provider call failed. */
export type ProviderErrorKind =
  | "http"
  | "timeout"
  | "protocol"
  | "network"
  | "aborted";

/** A failed call to a speech or language vendor. Messages never contain API keys. */
export class ProviderError extends Error {
  /** The vendor, e.g. `deepgram`. */
  readonly provider: string;
  /** What kind of failure it was. */
  readonly kind: ProviderErrorKind;
  /** The vendor's HTTP status, when there was one. */
  readonly status?: number;

  /**
   * Creates the error: the vendor, and what went wrong.
   *
   * @example
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ProviderError } from "./provider_error.ts";
   *
   * const error = new ProviderError("deepgram", {
   *   kind: "http",
   *   message: "Deepgram answered 429",
   *   status: 429,
   * });
   * assertEquals([error.provider, error.kind, error.status], [
   *   "deepgram",
   *   "http",
   *   429,
   * ]);
   * ```
   */
  constructor(provider: string, options: ProviderErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = "ProviderError";
    this.provider = provider;
    this.kind = options.kind;
    this.status = options.status;
  }
}

/** What a {@linkcode ProviderError} says besides the vendor. */
export interface ProviderErrorOptions {
  /** What kind of failure it was. */
  kind: ProviderErrorKind;
  /** What went wrong; never contains an API key. */
  message: string;
  /** The vendor's HTTP status, when there was one. */
  status?: number;
  /** The error that led to this one, kept for logs. */
  cause?: unknown;
}
