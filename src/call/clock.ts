/**
 * Time as calls see it, so tests can drive pacing and timeouts with a fake
 * clock instead of waiting.
 *
 * @module
 */

/** Cancels a scheduled callback; harmless after it ran. */
export type Cancel = () => void;

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since an arbitrary origin, monotonic. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch, for timestamps people read. */
  epochMs(): number;
  /** Runs `callback` once after `ms` milliseconds. */
  schedule(callback: () => void, ms: number): Cancel;
}

/** The real clock: `performance.now()`, `Date.now()` and the runtime's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  schedule(callback, ms) {
    const id = setTimeout(callback, ms);
    return () => clearTimeout(id);
  },
};

/**
 * Runs `callback` every `options.everyMs` milliseconds on `clock` until the
 * returned {@linkcode Cancel} is called: `setInterval`, but on the injected
 * clock so tests drive it with a fake one.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { type Clock, repeat } from "./clock.ts";
 *
 * // A clock whose one pending timer the example fires by hand.
 * let next: (() => void) | undefined;
 * const manual: Clock = {
 *   now: () => 0,
 *   epochMs: () => 0,
 *   schedule(callback) {
 *     next = callback;
 *     return () => (next = undefined);
 *   },
 * };
 * let ticks = 0;
 * const stop = repeat(manual, () => ticks++, { everyMs: 1000 });
 * next?.();
 * next?.();
 * next?.();
 * stop();
 * assertEquals(ticks, 3);
 * assertEquals(next, undefined);
 * ```
 */
export function repeat(
  clock: Clock,
  callback: () => void,
  options: { everyMs: number },
): Cancel {
  let stopped = false;
  let cancel: Cancel = () => {};
  const tick = () => {
    if (stopped) return;
    // Reschedule first: a callback that throws must not end the repetition.
    cancel = clock.schedule(tick, options.everyMs);
    callback();
  };
  cancel = clock.schedule(tick, options.everyMs);
  return () => {
    stopped = true;
    cancel();
  };
}
