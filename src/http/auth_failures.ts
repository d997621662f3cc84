/**
 * Failed authentications per client address: past `AUTH_FAILURE_LIMIT_PER_MIN`
 * in a minute, the address's failures are answered with 429 instead of 401.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Clock } from "../call/clock.ts";
import { HttpError } from "./json.ts";
import { RateLimiter } from "./rate_limit.ts";

const log = getLogger(["exovoice", "server"]);

/** Options of {@linkcode AuthFailures}. */
export interface AuthFailuresOptions {
  /** Failures allowed per address per minute (`AUTH_FAILURE_LIMIT_PER_MIN`). */
  limitPerMin: number;
  /** Time, for the one-minute windows. */
  clock: Clock;
}

/**
 * Counts failed authentications per address. Only failures are limited, so
 * the right credentials always pass and a stranger failing from a shared
 * address (a proxy's, without `TRUST_PROXY`) cannot lock Exotel out.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../call/clock.ts";
 * import { AuthFailures } from "./auth_failures.ts";
 *
 * const failures = new AuthFailures({ limitPerMin: 1, clock: systemClock });
 * assertEquals(failures.failed("203.0.113.7", "/voicebot/ws"), undefined);
 * assertEquals(failures.failed("203.0.113.7", "/voicebot/ws")?.status, 429);
 * ```
 */
export class AuthFailures {
  #limiter: RateLimiter;
  #clock: Clock;

  /** Creates the counter. */
  constructor(options: AuthFailuresOptions) {
    this.#limiter = new RateLimiter({
      limit: options.limitPerMin,
      windowMs: 60_000,
    });
    this.#clock = options.clock;
  }

  /**
   * Counts a failed authentication from `clientIp` on `pathname` and logs
   * it. Returns the 429 to answer instead of the 401 once the address is
   * past its limit, else undefined.
   */
  failed(clientIp: string, pathname: string): HttpError | undefined {
    const limiter = this.#limiter;
    const now = this.#clock.now();
    const wasLimited = limiter.isLimited(clientIp, now);
    if (!limiter.hit(clientIp, now)) {
      return new HttpError(429, {
        code: "too_many_auth_failures",
        message:
          "Too many failed authentication attempts from this address: wait, then send the right credentials",
        headers: {
          "retry-after": String(limiter.retryAfterS(clientIp, now)),
        },
      });
    }
    log.warn("Authentication failed from {clientIp} on {pathname}", {
      clientIp,
      pathname,
    });
    if (!wasLimited && limiter.isLimited(clientIp, now)) {
      log.warn(
        "{clientIp} reached AUTH_FAILURE_LIMIT_PER_MIN: its failures get 429 for {seconds} s; its right credentials still pass",
        { clientIp, seconds: limiter.retryAfterS(clientIp, now) },
      );
    }
    return undefined;
  }
}
