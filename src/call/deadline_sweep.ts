/**
 * The sweep that ends calls past a deadline: no frame for too long (idle),
 * no `start` in time (handshake), or simply too long (max call length).
 * Time and timers come from the injected {@linkcode Clock}, so every rule
 * is tested on a fake clock.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import type { CallState } from "./call_snapshot.ts";

/** Why a call was ended by the sweep; the close frame's reason. */
export type DeadlineReason =
  | "idle_timeout"
  | "handshake_timeout"
  | "max_call_length";

/** The deadlines, in milliseconds. */
export interface CallDeadlines {
  /** A call with no frame for this long is ended (`IDLE_TIMEOUT_S`). */
  idleMs: number;
  /** A socket that sends no `start` within this is ended (`HANDSHAKE_TIMEOUT_S`). */
  handshakeMs: number;
  /** A call is ended after this long (`MAX_CALL_S`). */
  maxCallMs: number;
}

/** What the sweep reads of a live call (a registry `Session` fits). */
export interface SweptCall {
  /** Epoch ms of the upgrade. */
  readonly connectedAt: number;
  /** Epoch ms of the last frame received. */
  readonly lastActivity: number;
  /** Where the call is in its life. */
  readonly state: CallState;
  /** Ends the call with `reason`. */
  end(reason: string): void;
}

/** Longest pause between sweeps, in ms. */
const MAX_SWEEP_INTERVAL_MS = 5000;

/**
 * The deadline `call` has passed at epoch ms `now`, if any. Idle wins over
 * handshake, which wins over max call length, when several have passed.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { overdueReason } from "./deadline_sweep.ts";
 *
 * const deadlines = { idleMs: 60_000, handshakeMs: 10_000, maxCallMs: 3_600_000 };
 * const call = { connectedAt: 0, lastActivity: 0, state: "connected" as const };
 * assertEquals(overdueReason(call, 5_000, deadlines), undefined);
 * assertEquals(overdueReason(call, 10_001, deadlines), "handshake_timeout");
 * ```
 */
export function overdueReason(
  call: Pick<SweptCall, "connectedAt" | "lastActivity" | "state">,
  now: number,
  deadlines: CallDeadlines,
): DeadlineReason | undefined {
  if (call.lastActivity < now - deadlines.idleMs) return "idle_timeout";
  if (
    call.state === "connected" && call.connectedAt < now - deadlines.handshakeMs
  ) {
    return "handshake_timeout";
  }
  if (call.connectedAt < now - deadlines.maxCallMs) return "max_call_length";
  return undefined;
}

/**
 * How often to sweep for `deadlines`: half the shortest idle or handshake
 * deadline, so a call is ended at most half a deadline late, and at least
 * every 5 s.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { sweepIntervalMs } from "./deadline_sweep.ts";
 *
 * assertEquals(
 *   sweepIntervalMs({ idleMs: 60_000, handshakeMs: 1_000, maxCallMs: 3_600_000 }),
 *   500,
 * );
 * ```
 */
export function sweepIntervalMs(deadlines: CallDeadlines): number {
  return Math.min(
    MAX_SWEEP_INTERVAL_MS,
    deadlines.idleMs / 2,
    deadlines.handshakeMs / 2,
    deadlines.maxCallMs / 2,
  );
}

/** Options of {@linkcode DeadlineSweep}. */
export interface DeadlineSweepOptions {
  /** The live calls, read at every sweep (e.g. `() => registry.values()`). */
  calls(): Iterable<SweptCall>;
  /** Time and timers; `epochMs()` is compared with the calls' epoch stamps. */
  clock: Clock;
  /** The deadlines. */
  deadlines: CallDeadlines;
}

/**
 * Ends calls past their deadlines, every {@linkcode sweepIntervalMs} once
 * started.
 *
 * @example Sweep once, by hand
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "./clock.ts";
 * import { DeadlineSweep } from "./deadline_sweep.ts";
 *
 * const ended: string[] = [];
 * const sweep = new DeadlineSweep({
 *   calls: () => [{
 *     connectedAt: 0,
 *     lastActivity: 0,
 *     state: "started",
 *     end: (reason) => ended.push(reason),
 *   }],
 *   clock: systemClock,
 *   deadlines: { idleMs: 60_000, handshakeMs: 10_000, maxCallMs: 3_600_000 },
 * });
 * assertEquals(sweep.sweep(), 1);
 * assertEquals(ended, ["idle_timeout"]);
 * ```
 */
export class DeadlineSweep {
  #options: DeadlineSweepOptions;
  #cancel: (() => void) | undefined;

  /** Creates a sweep; it runs once {@linkcode DeadlineSweep.start} is called. */
  constructor(options: DeadlineSweepOptions) {
    this.#options = options;
  }

  /** Ends every call past a deadline now. Returns how many it ended. */
  sweep(): number {
    const { calls, clock, deadlines } = this.#options;
    const now = clock.epochMs();
    let ended = 0;
    // Copied first: ending a call removes it from the registry being read.
    for (const call of [...calls()]) {
      const reason = overdueReason(call, now, deadlines);
      if (reason === undefined) continue;
      call.end(reason);
      ended++;
    }
    return ended;
  }

  /** Sweeps every {@linkcode sweepIntervalMs} until {@linkcode DeadlineSweep.stop}. */
  start(): void {
    if (this.#cancel) return;
    const interval = sweepIntervalMs(this.#options.deadlines);
    const next = () => {
      this.#cancel = this.#options.clock.schedule(() => {
        // Rescheduled first, so one call failing to end stops no sweep.
        next();
        this.sweep();
      }, interval);
    };
    next();
  }

  /** Stops sweeping; harmless when not started. */
  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
