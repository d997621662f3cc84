/**
 * A circuit breaker for one provider endpoint, shared by every call: after
 * enough consecutive failures it opens and keeps the endpoint out, then after
 * a cool-down lets one call probe it (half-open); a success closes it, a
 * failure opens it again. Pure and clock-driven.
 *
 * @module
 */

/** Where a breaker stands. */
export type BreakerState = "closed" | "open" | "half_open";

/** Settings of a {@linkcode CircuitBreaker}. */
export interface BreakerSettings {
  /** Consecutive failures that open the breaker (`PROVIDER_BREAKER_FAILURES`). */
  failures: number;
  /** How long an open breaker keeps the endpoint out before a probe (`PROVIDER_BREAKER_COOLDOWN_MS`). */
  cooldownMs: number;
}

/** The breaker settings used when none are given. */
export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = {
  failures: 3,
  cooldownMs: 30_000,
};

/**
 * One endpoint's breaker.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * let now = 0;
 * const breaker = new CircuitBreaker({ failures: 2, cooldownMs: 1000 }, {
 *   now: () => now,
 * });
 * breaker.failed();
 * breaker.failed();
 * assertEquals(breaker.state, "open");
 * assertEquals(breaker.tryAcquire(), false);
 * now = 1000;
 * assertEquals(breaker.tryAcquire(), true); // the half-open probe
 * breaker.succeeded();
 * assertEquals(breaker.state, "closed");
 * ```
 */
export class CircuitBreaker {
  /** The settings it was made with. */
  readonly settings: BreakerSettings;
  #now: () => number;
  #state: BreakerState = "closed";
  #consecutive = 0;
  #openedAt = 0;
  #probing = false;
  #opened = 0;

  /** Creates a closed breaker; `now` is the injected clock's. */
  constructor(settings: BreakerSettings, clock: { now(): number }) {
    this.settings = settings;
    this.#now = () => clock.now();
  }

  /** The state now: an open breaker whose cool-down is over reads `half_open`. */
  get state(): BreakerState {
    if (
      this.#state === "open" &&
      this.#now() - this.#openedAt >= this.settings.cooldownMs
    ) return "half_open";
    return this.#state;
  }

  /** How many times it has opened. */
  get timesOpened(): number {
    return this.#opened;
  }

  /**
   * Whether a request may go to the endpoint now. Closed: yes. Open: no,
   * until the cool-down is over; then one request is let through as the
   * probe, and others wait for its outcome.
   */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open" || this.#probing) return false;
    this.#state = "half_open";
    this.#probing = true;
    return true;
  }

  /** The request went well: the breaker closes. */
  succeeded(): void {
    this.#consecutive = 0;
    this.#probing = false;
    this.#state = "closed";
  }

  /** The request failed the endpoint's way: counts, and opens the breaker at the threshold (at once for a failed probe). */
  failed(): void {
    this.#consecutive++;
    const probe = this.#probing || this.#state === "half_open";
    this.#probing = false;
    // A request let through before the breaker opened does not extend the cool-down.
    if (this.#state === "open") return;
    if (probe || this.#consecutive >= this.settings.failures) {
      this.#opened++;
      this.#state = "open";
      this.#openedAt = this.#now();
    }
  }

  /** The request ended without telling anything (aborted by a barge-in, or failed for the caller's own reasons): a probe slot is given back. */
  released(): void {
    this.#probing = false;
  }
}
