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

  /** Creates the error. */
  constructor(
    provider: string,
    kind: ProviderErrorKind,
    message: string,
    options?: { status?: number; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.name = "ProviderError";
    this.provider = provider;
    this.kind = kind;
    this.status = options?.status;
  }
}
