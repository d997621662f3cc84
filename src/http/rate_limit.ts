/**
 * Fixed-window rate limiting per key (a client IP). Pure: time comes in.
 *
 * @module
 */

interface Window {
  startedAt: number;
  count: number;
}

/**
 * Allows at most `limit` events per key in each window of `windowMs`.
 * Memory stays bounded: at most `maxKeys` keys are tracked, and windows
 * that have ended are dropped first.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const limiter = new RateLimiter({ limit: 2, windowMs: 60_000 });
 * assertEquals(limiter.hit("10.0.0.1", 0), true);
 * assertEquals(limiter.hit("10.0.0.1", 1), true);
 * assertEquals(limiter.hit("10.0.0.1", 2), false);
 * assertEquals(limiter.retryAfterS("10.0.0.1", 2), 60);
 * assertEquals(limiter.hit("10.0.0.2", 2), true); // each key has its own count
 * ```
 */
export class RateLimiter {
  #limit: number;
  #windowMs: number;
  #maxKeys: number;
  #windows = new Map<string, Window>();

  /** Creates a limiter. */
  constructor(options: { limit: number; windowMs: number; maxKeys?: number }) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Counts an event for `key` at `now`; false when it is over the limit. */
  hit(key: string, now: number): boolean {
    const window = this.#current(key, now);
    if (window) {
      window.count++;
      return window.count <= this.#limit;
    }
    this.#makeRoom(now);
    this.#windows.set(key, { startedAt: now, count: 1 });
    return 1 <= this.#limit;
  }

  /** True when `key` has used up its window at `now`, without counting anything. */
  isLimited(key: string, now: number): boolean {
    const window = this.#current(key, now);
    return window !== undefined && window.count >= this.#limit;
  }

  /** Seconds until `key`'s window ends. */
  retryAfterS(key: string, now: number): number {
    const window = this.#current(key, now);
    return window
      ? Math.max(1, Math.ceil((window.startedAt + this.#windowMs - now) / 1000))
      : 0;
  }

  #current(key: string, now: number): Window | undefined {
    const window = this.#windows.get(key);
    if (window && now - window.startedAt < this.#windowMs) return window;
    if (window) this.#windows.delete(key);
    return undefined;
  }

  #makeRoom(now: number): void {
    if (this.#windows.size < this.#maxKeys) return;
    for (const [key, window] of this.#windows) {
      if (now - window.startedAt >= this.#windowMs) this.#windows.delete(key);
    }
    // Still full of live windows: forget the oldest rather than grow.
    while (this.#windows.size >= this.#maxKeys) {
      this.#windows.delete(this.#windows.keys().next().value!);
    }
  }
}
