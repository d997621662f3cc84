/**
 * Totals over the live calls, as a scrape of `GET /metrics` reads them: a
 * pure projection of the calls' snapshots, so that a counter can add what
 * live calls have done so far to what ended calls were folded in with.
 *
 * @module
 */

import type { CallSnapshot } from "../call/call_snapshot.ts";
import type { PlayoutCounters } from "../call/player.ts";

/** What the live calls have done so far, summed: their players' counters and these. */
export interface LiveTotals extends PlayoutCounters {
  /** Calls counted, stopped ones not folded in yet included. */
  calls: number;
  /** Calls waiting for `start`. */
  connected: number;
  /** Calls past `start`. */
  started: number;
  /** Frames received. */
  framesIn: number;
  /** Audio bytes received. */
  bytesIn: number;
  /** DTMF digits pressed. */
  dtmfDigits: number;
  /** Frames skipped, by kind as a label ({@linkcode plainLabel}). */
  badFrames: Map<string, number>;
}

const PLAIN_LABEL = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * `value` when it is a plain snake_case word of at most 32 characters, else
 * `other`: a label value from a bounded set, whatever a peer made us count.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(plainLabel("invalid_json"), "invalid_json");
 * assertEquals(plainLabel("Some Peer's Text"), "other");
 * ```
 */
export function plainLabel(value: string): string {
  return PLAIN_LABEL.test(value) ? value : "other";
}

/**
 * Sums the counters of `snapshots`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const totals = liveTotals([]);
 * assertEquals(totals.calls, 0);
 * assertEquals(totals.badFrames.size, 0);
 * ```
 */
export function liveTotals(snapshots: Iterable<CallSnapshot>): LiveTotals {
  const totals: LiveTotals = {
    calls: 0,
    connected: 0,
    started: 0,
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    marksSent: 0,
    marksAcknowledged: 0,
    clears: 0,
    underruns: 0,
    droppedBytes: 0,
    dtmfDigits: 0,
    badFrames: new Map(),
  };
  for (const snapshot of snapshots) {
    const { playout } = snapshot;
    totals.calls++;
    if (snapshot.state !== "stopped") totals[snapshot.state]++;
    totals.framesIn += snapshot.framesIn;
    totals.bytesIn += snapshot.bytesIn;
    totals.framesOut += playout.framesOut;
    totals.bytesOut += playout.bytesOut;
    totals.marksSent += playout.marksSent;
    totals.marksAcknowledged += playout.marksAcknowledged;
    totals.clears += playout.clears;
    totals.underruns += playout.underruns;
    totals.droppedBytes += playout.droppedBytes;
    totals.dtmfDigits += snapshot.dtmfDigits.length;
    for (const kind in snapshot.badFrames) {
      const label = plainLabel(kind);
      totals.badFrames.set(
        label,
        (totals.badFrames.get(label) ?? 0) + snapshot.badFrames[kind],
      );
    }
  }
  return totals;
}
