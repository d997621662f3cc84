/**
 * Latency samples and their percentiles.
 *
 * @module
 */

/** Percentiles of a set of samples, in the samples' unit. */
export interface Distribution {
  /** Number of samples. */
  count: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** Largest sample. */
  max: number;
}

/**
 * A growable list of samples stored unboxed, so a few hundred thousand
 * latencies cost the generator little memory and no GC churn.
 */
export class Samples {
  #values = new Float64Array(1024);
  #count = 0;

  /** Number of samples added. */
  get count(): number {
    return this.#count;
  }

  /** Adds one sample. */
  add(value: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = value;
  }

  /** Percentiles of the samples added, all 0 when there are none. */
  distribution(): Distribution {
    return distributionOf(this.#values.subarray(0, this.#count));
  }
}

/**
 * Percentiles of `values` by the nearest-rank method.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(distributionOf(Float64Array.of(3, 1, 2)).p50, 2);
 * ```
 */
export function distributionOf(values: Float64Array): Distribution {
  const count = values.length;
  if (count === 0) return { count, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = values.slice().sort();
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * count) - 1)];
  return {
    count,
    p50: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    max: sorted[count - 1],
  };
}
