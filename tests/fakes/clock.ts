/**
 * A clock whose time moves only when a test says so.
 *
 * @module
 */

import type { Cancel, Clock } from "../../src/call/clock.ts";

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/** Lets every pending promise continuation run, via one real macrotask. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A {@linkcode Clock} driven by {@linkcode FakeClock.advance}. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers: Timer[] = [];
  #epochAtZero: number;

  /** `epochAtZero` is the wall-clock time at fake time 0 (2026-12-03 by default). */
  constructor(epochAtZero = Date.UTC(2026, 11, 3)) {
    this.#epochAtZero = epochAtZero;
  }

  /** The fake time in ms. */
  now(): number {
    return this.#now;
  }

  /** The fake wall-clock time: `epochAtZero` plus the fake time. */
  epochMs(): number {
    return this.#epochAtZero + this.#now;
  }

  /** Schedules `callback` at fake time now + `ms`. */
  schedule(callback: () => void, ms: number): Cancel {
    const timer = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      callback,
    };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((candidate) => candidate !== timer);
    };
  }

  /** Number of timers waiting. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, running due timers in order and letting the code they wake run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    while (true) {
      const due = this.#timers
        .filter((timer) => timer.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      this.#now = due.at;
      due.callback();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}
