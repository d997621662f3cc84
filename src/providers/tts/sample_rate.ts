/**
 * Which rate to ask a text-to-speech vendor for. Pure.
 *
 * @module
 */

/** Error thrown for a requested rate that is not a positive whole number. */
export class InvalidSampleRateError extends RangeError {
  /** The rejected rate. */
  readonly rate: number;

  /** Creates the error for `rate`. */
  constructor(rate: number) {
    super(
      `Invalid sample rate "${rate}": expected a positive whole number of hertz`,
    );
    this.name = "InvalidSampleRateError";
    this.rate = rate;
  }
}

/**
 * The rate to request: `requested` itself when the vendor supports it,
 * otherwise the lowest supported rate above it (downsampling that loses
 * nothing), otherwise the highest supported rate.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(chooseSampleRate(8000, [16000, 22050, 24000]), 16000);
 * assertEquals(chooseSampleRate(48000, [8000, 16000, 24000]), 24000);
 * assertEquals(chooseSampleRate(16000, [8000, 16000, 24000]), 16000);
 * ```
 *
 * @throws {InvalidSampleRateError} when `requested` is not a positive integer.
 */
export function chooseSampleRate(
  requested: number,
  supported: readonly number[],
): number {
  if (!Number.isInteger(requested) || requested <= 0) {
    throw new InvalidSampleRateError(requested);
  }
  const ascending = [...supported].sort((a, b) => a - b);
  return ascending.find((rate) => rate >= requested) ?? ascending.at(-1) ??
    requested;
}
