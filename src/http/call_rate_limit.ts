/**
 * `CALL_RATE_LIMIT_PER_MIN`: outbound calls placed per client address per
 * minute.
 *
 * @module
 */

import type { Clock } from "../call/clock.ts";
import { HttpError } from "./json.ts";
import { RateLimiter } from "./rate_limit.ts";

/** Options of {@linkcode CallRateLimit}. */
export interface CallRateLimitOptions {
  /** Calls allowed per address per minute. */
  limitPerMin: number;
  /** Time, for the one-minute windows. */
  clock: Clock;
}

/**
 * Limits how many calls one address places per minute.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { systemClock } from "../call/clock.ts";
 * import { CallRateLimit } from "./call_rate_limit.ts";
 * import { HttpError } from "./json.ts";
 *
 * const limit = new CallRateLimit({ limitPerMin: 1, clock: systemClock });
 * limit.check("203.0.113.7");
 * const error = assertThrows(() => limit.check("203.0.113.7"), HttpError);
 * assertEquals(error.status, 429);
 * ```
 */
export class CallRateLimit {
  #limiter: RateLimiter;
  #clock: Clock;

  /** Creates the limit. */
  constructor(options: CallRateLimitOptions) {
    this.#limiter = new RateLimiter({
      limit: options.limitPerMin,
      windowMs: 60_000,
    });
    this.#clock = options.clock;
  }

  /**
   * Counts a call placed from `clientIp`.
   *
   * @throws {HttpError} 429 with `Retry-After` past the limit.
   */
  check(clientIp: string): void {
    const now = this.#clock.now();
    if (this.#limiter.hit(clientIp, now)) return;
    throw new HttpError(429, {
      code: "rate_limited",
      message: "Too many calls placed from this address: slow down",
      headers: {
        "retry-after": String(this.#limiter.retryAfterS(clientIp, now)),
      },
    });
  }
}
