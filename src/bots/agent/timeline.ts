/**
 * The per-turn latency timeline: when the caller stopped speaking, and how
 * long each stage after that took until the caller heard the answer. Pure:
 * times are given by the caller, from a monotonic clock.
 *
 * @module
 */

import type { TurnTiming } from "../bot.ts";

/** The moments recorded in a turn, in pipeline order. */
export const TURN_STAGES = [
  "speechEnd",
  "finalTranscript",
  "firstToken",
  "firstTtsByte",
  "firstMediaSent",
  "firstMarkEcho",
] as const;

/** One moment of a turn. */
export type TurnStage = typeof TURN_STAGES[number];

/** What ended the caller's turn. */
export type TurnTrigger = "stt" | "vad" | "dtmf";

/** How a turn's reply ended. */
export type TurnOutcome =
  | "in_progress"
  | "answered"
  | "interrupted"
  | "failed"
  | "stopped";

/** A finished or running turn, as monitoring shows it. All durations in ms, rounded to 0.1. */
export interface TurnSummary {
  /** The turn's number in the call, from 1. */
  turn: number;
  /** What ended the caller's turn. */
  trigger: TurnTrigger;
  /** When the turn was handed to the model (ISO 8601). */
  startedAt: string;
  /** How the reply ended. */
  outcome: TurnOutcome;
  /** Caller speech end → final transcript. */
  speechEndToFinalMs?: number;
  /** Final transcript → first model token. */
  finalToFirstTokenMs?: number;
  /** First model token → first text-to-speech byte. */
  firstTokenToFirstTtsByteMs?: number;
  /** First text-to-speech byte → first media frame sent. */
  firstTtsByteToFirstMediaMs?: number;
  /** First media frame sent → Exotel's echo of the first piece's mark (the caller heard it). */
  firstMediaToFirstMarkMs?: number;
  /** Caller speech end → first media frame sent: the silence the caller sat through. */
  speechEndToFirstMediaMs?: number;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * The moments of one turn. Each is kept the first time it is recorded.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../../call/clock.ts";
 *
 * const clock = systemClock; // a call's injected clock
 * const timeline = new TurnTimeline({ turn: 1, trigger: "stt", startedAt: clock.epochMs() });
 * timeline.record("speechEnd", 1000);
 * timeline.record("finalTranscript", 1250);
 * assertEquals(timeline.summary().speechEndToFinalMs, 250);
 * ```
 */
export class TurnTimeline {
  /** The turn's number in the call. */
  readonly turn: number;
  /** What ended the caller's turn. */
  readonly trigger: TurnTrigger;
  #startedAt: number;
  #times: Partial<Record<TurnStage, number>> = {};
  #outcome: TurnOutcome = "in_progress";

  /** Starts a turn; `startedAt` is epoch ms, for display. */
  constructor(
    options: { turn: number; trigger: TurnTrigger; startedAt: number },
  ) {
    this.turn = options.turn;
    this.trigger = options.trigger;
    this.#startedAt = options.startedAt;
  }

  /** Records `stage` at monotonic time `at`, unless it was already recorded. */
  record(stage: TurnStage, at: number): void {
    this.#times[stage] ??= at;
  }

  /** When `stage` happened, if it has. */
  time(stage: TurnStage): number | undefined {
    return this.#times[stage];
  }

  /** How the reply ended. */
  get outcome(): TurnOutcome {
    return this.#outcome;
  }

  /** Sets how the reply ended; the first outcome other than `in_progress` sticks. */
  finish(outcome: Exclude<TurnOutcome, "in_progress">): void {
    if (this.#outcome === "in_progress") this.#outcome = outcome;
  }

  /** The turn's durations. */
  summary(): TurnSummary {
    const between = (from: TurnStage, to: TurnStage) => {
      const start = this.#times[from];
      const end = this.#times[to];
      return start === undefined || end === undefined
        ? undefined
        : round(end - start);
    };
    const summary: TurnSummary = {
      turn: this.turn,
      trigger: this.trigger,
      startedAt: new Date(this.#startedAt).toISOString(),
      outcome: this.#outcome,
    };
    const fields: [keyof TurnSummary, TurnStage, TurnStage][] = [
      ["speechEndToFinalMs", "speechEnd", "finalTranscript"],
      ["finalToFirstTokenMs", "finalTranscript", "firstToken"],
      ["firstTokenToFirstTtsByteMs", "firstToken", "firstTtsByte"],
      ["firstTtsByteToFirstMediaMs", "firstTtsByte", "firstMediaSent"],
      ["firstMediaToFirstMarkMs", "firstMediaSent", "firstMarkEcho"],
      ["speechEndToFirstMediaMs", "speechEnd", "firstMediaSent"],
    ];
    for (const [field, from, to] of fields) {
      const ms = between(from, to);
      if (ms !== undefined) Object.assign(summary, { [field]: ms });
    }
    return summary;
  }
}

/**
 * The last turns of a call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../../call/clock.ts";
 *
 * const log = new TimelineLog(10);
 * log.begin("stt", systemClock.epochMs()).finish("answered");
 * assertEquals(log.recent().map((turn) => turn.outcome), ["answered"]);
 * ```
 */
export class TimelineLog {
  #limit: number;
  #turns: TurnTimeline[] = [];
  #count = 0;

  /** Keeps the last `limit` turns. */
  constructor(limit = 10) {
    this.#limit = Math.max(1, limit);
  }

  /** Turns begun so far. */
  get count(): number {
    return this.#count;
  }

  /** Starts the next turn. */
  begin(trigger: TurnTrigger, startedAt: number): TurnTimeline {
    const timeline = new TurnTimeline({
      turn: ++this.#count,
      trigger,
      startedAt,
    });
    this.#turns.push(timeline);
    if (this.#turns.length > this.#limit) this.#turns.shift();
    return timeline;
  }

  /** Summaries of the kept turns, oldest first. */
  recent(): TurnSummary[] {
    return this.#turns.map((timeline) => timeline.summary());
  }
}

/**
 * A turn's timeline as the call record keeps it: each stage in milliseconds
 * from the end of the caller's speech.
 */
export function turnTiming(summary: TurnSummary): TurnTiming {
  const latenciesMs: TurnTiming["latenciesMs"] = {};
  const sttFinal = summary.speechEndToFinalMs;
  const firstToken = sum(sttFinal, summary.finalToFirstTokenMs);
  const ttsByte = sum(firstToken, summary.firstTokenToFirstTtsByteMs);
  const firstMedia = summary.speechEndToFirstMediaMs;
  const firstMark = sum(firstMedia, summary.firstMediaToFirstMarkMs);
  if (sttFinal !== undefined) latenciesMs.stt_final = sttFinal;
  if (firstToken !== undefined) latenciesMs.llm_first_token = firstToken;
  if (ttsByte !== undefined) latenciesMs.tts_first_byte = ttsByte;
  if (firstMedia !== undefined) latenciesMs.first_media = firstMedia;
  if (firstMark !== undefined) latenciesMs.first_mark = firstMark;
  return { turn: summary.turn, latenciesMs };
}

function sum(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : round(a + b);
}
