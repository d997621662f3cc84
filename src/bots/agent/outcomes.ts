/**
 * How each call left the agent (`end_call` or `transfer`), remembered for a
 * while by call id. Exotel's Voicebot applet cannot branch: when the stream
 * closes the flow goes on to the one next applet. Put a Passthru applet
 * there, pointing at a route that answers from {@linkcode CallOutcomes}
 * (200 for a transfer, 302 otherwise), and connect its 200 branch to a
 * Connect applet and its 302 branch to Hangup. Pure.
 *
 * @module
 */

import { type Clock, systemClock } from "../../call/clock.ts";

/** How the agent let the call go: the tool it ended with. Not the record's `CallOutcome`, which says how any call ended. */
export type AgentExit = "end_call" | "transfer";

/** Options of {@linkcode CallOutcomes}. */
export interface CallOutcomesOptions {
  /** How long an outcome is kept, in ms. Default 10 minutes. */
  ttlMs?: number;
  /** Most outcomes kept. Default 10 000. */
  maxEntries?: number;
  /** Ages entries by its `now()`; the system clock by default. */
  clock?: Pick<Clock, "now">;
}

/**
 * Recent call outcomes by call id (Exotel's CallSid).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * let now = 0;
 * const outcomes = new CallOutcomes({ ttlMs: 60_000, clock: { now: () => now } });
 * outcomes.set("CA123", "transfer");
 * assertEquals(outcomes.get("CA123"), "transfer");
 * now = 60_001; // forgotten once older than ttlMs
 * assertEquals(outcomes.get("CA123"), undefined);
 * ```
 */
export class CallOutcomes {
  #entries = new Map<string, { outcome: AgentExit; at: number }>();
  #ttlMs: number;
  #maxEntries: number;
  #clock: Pick<Clock, "now">;

  /** Creates an empty store. */
  constructor(options: CallOutcomesOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#clock = options.clock ?? systemClock;
  }

  /** Remembers how call `callId` ended. */
  set(callId: string, outcome: AgentExit): void {
    this.#entries.delete(callId);
    this.#entries.set(callId, { outcome, at: this.#clock.now() });
    for (const [id, entry] of this.#entries) {
      if (
        this.#entries.size <= this.#maxEntries &&
        this.#clock.now() - entry.at < this.#ttlMs
      ) break;
      this.#entries.delete(id);
    }
  }

  /** How call `callId` ended, if the agent ended it within the time kept. */
  get(callId: string): AgentExit | undefined {
    const entry = this.#entries.get(callId);
    if (entry === undefined) return undefined;
    if (this.#clock.now() - entry.at >= this.#ttlMs) {
      this.#entries.delete(callId);
      return undefined;
    }
    return entry.outcome;
  }
}
