/**
 * What a bot tells its call: the transcript and per-turn latencies it adds
 * to the call's record when the call ends, and what it is doing now for the
 * live views. Types only; the call and every view of it read them.
 *
 * @module
 */

/** The stages of a turn whose latency is measured, in the order they happen. */
export const LATENCY_STAGES = [
  "stt_final",
  "llm_first_token",
  "tts_first_byte",
  "first_media",
  "first_mark",
] as const;

/** A measured stage of a turn: the final transcript, the model's first token, … */
export type LatencyStage = typeof LATENCY_STAGES[number];

/**
 * One caller-to-bot turn's timeline: milliseconds from the end of the caller's
 * speech to each stage reached. A stage the turn never reached (cut by
 * barge-in, say) is absent.
 */
export interface TurnTiming {
  /** The turn's number in the call, from 1. */
  turn: number;
  /** Milliseconds from the end of the caller's speech, by stage. */
  latenciesMs: Partial<Record<LatencyStage, number>>;
}

/**
 * One line of a call's transcript: something said, or a tool the agent
 * called (`{"role": "tool", "name", "arguments", "outcome", "latencyMs",
 * "atMs"}`, with `text` a one-line summary for lists).
 */
export interface TranscriptEntry {
  /** Who spoke, or `tool` for a tool call. */
  role: "caller" | "bot" | "tool";
  /** What the recogniser heard (caller), what the bot said (bot), or `name → outcome` (tool). */
  text: string;
  /** Bot lines only: the part the caller actually heard before a barge-in cut it. */
  heardText?: string;
  /** Bot lines only: true when the caller barged in. */
  interrupted?: boolean;
  /** Milliseconds since the call connected, when known. */
  atMs?: number;
  /** Tool lines only: the tool. */
  name?: string;
  /** Tool lines only: its arguments, with the tool's `redact:` fields masked. */
  arguments?: unknown;
  /** Tool lines only: `ok`, `http_error`, `timeout`, `invalid_arguments`, `too_large`, `error`, `unknown_tool` or `aborted`. */
  outcome?: string;
  /** Tool lines only: how long it ran. */
  latencyMs?: number;
}

/** What a bot adds to the call's record when the call ends. */
export interface BotReport {
  /** Caller and bot turns, bot turns with what the caller actually heard. */
  transcript: TranscriptEntry[];
  /** Per-turn latency timelines. */
  turns: TurnTiming[];
}

/** What a bot is doing at this moment, for the console's live view. */
export interface BotLiveState {
  /** Hearing the caller, waiting on its models, talking, or paused over the caller's voice. */
  activity: "listening" | "thinking" | "speaking" | "paused";
  /** The caller's words heard in the current turn and not answered yet. */
  partial: string;
}
