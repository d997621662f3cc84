/**
 * The console's overview figures: calls per minute and latency percentiles
 * by stage over the last hour, from calls as they end on this instance.
 * Pure: given times, keeps at most an hour.
 *
 * @module
 */

import {
  LATENCY_STAGES,
  type LatencyStage,
  type TurnTiming,
} from "../records/call_record.ts";

/** The window the overview covers. */
export const OVERVIEW_WINDOW_MS = 60 * 60_000;

/** One ended call, as the overview needs it. */
export interface EndedCall {
  /** Epoch ms it ended. */
  endedAt: number;
  /** Its bounded outcome (`stop`, `closed`, `hangup`, …). */
  outcome: string;
  /** Its turns' latencies. */
  turns: TurnTiming[];
}

/** Percentiles of one stage's latency. */
export interface StageLatency {
  /** The stage. */
  stage: LatencyStage;
  /** Turns that reached it. */
  count: number;
  /** Median, ms; null without turns. */
  p50: number | null;
  /** 95th percentile, ms; null without turns. */
  p95: number | null;
}

/** The overview of the last hour. */
export interface Overview {
  /** Calls ended per minute, oldest minute first, 60 of them (the last is the current minute). */
  callsPerMinute: number[];
  /** Calls ended in the hour. */
  callsEnded: number;
  /** Calls ended in the hour by outcome. */
  outcomes: Record<string, number>;
  /** Latency percentiles by stage. */
  latency: StageLatency[];
}

/** Calls kept at most, whatever the hour held. */
const MAX_CALLS = 10_000;

/**
 * Calls that ended in the last hour.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { RecentCalls } from "./recent_calls.ts";
 * const recent = new RecentCalls();
 * recent.add({ endedAt: 0, outcome: "stop", turns: [{ turn: 1, latenciesMs: { stt_final: 300 } }] });
 * assertEquals(recent.overview(1000).latency[0].p50, 300);
 * ```
 */
export class RecentCalls {
  #calls: EndedCall[] = [];

  /** Remembers a call that ended. */
  add(call: EndedCall): void {
    this.#calls.push(call);
    if (this.#calls.length > MAX_CALLS) this.#calls.shift();
  }

  /** The figures for the hour up to `now` (epoch ms). */
  overview(now: number): Overview {
    const since = now - OVERVIEW_WINDOW_MS;
    this.#calls = this.#calls.filter((call) => call.endedAt > since);
    const callsPerMinute = new Array<number>(60).fill(0);
    const outcomes: Record<string, number> = {};
    const byStage = new Map<LatencyStage, number[]>(
      LATENCY_STAGES.map((stage) => [stage, []]),
    );
    for (const call of this.#calls) {
      const minute = 59 - Math.floor((now - call.endedAt) / 60_000);
      if (minute >= 0 && minute < 60) callsPerMinute[minute]++;
      outcomes[call.outcome] = (outcomes[call.outcome] ?? 0) + 1;
      for (const turn of call.turns) {
        for (const stage of LATENCY_STAGES) {
          const ms = turn.latenciesMs[stage];
          if (ms !== undefined) byStage.get(stage)!.push(ms);
        }
      }
    }
    return {
      callsPerMinute,
      callsEnded: this.#calls.length,
      outcomes,
      latency: LATENCY_STAGES.map((stage) => {
        const values = byStage.get(stage)!.sort((a, b) => a - b);
        return {
          stage,
          count: values.length,
          p50: percentile(values, 0.5),
          p95: percentile(values, 0.95),
        };
      }),
    };
  }
}

/** The nearest-rank percentile of sorted `values`; null when empty. */
export function percentile(values: number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const rank = Math.ceil(fraction * values.length);
  return values[Math.min(values.length, Math.max(1, rank)) - 1];
}
