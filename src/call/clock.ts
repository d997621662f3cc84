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
