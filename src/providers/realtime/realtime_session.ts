/**
 * What a speech-to-speech model (OpenAI Realtime, Gemini Live) looks like to
 * a bot: one streaming session per call that hears the caller's audio and
 * answers with audio, transcripts and tool calls. Each vendor adapter
 * converts audio to and from the call's rate itself, so a bot deals only in
 * 16-bit PCM at the call's rate.
 *
 * @module
 */

import type { SampleRate } from "../../audio/pcm.ts";
import type { Clock } from "../../call/clock.ts";

/** A function the model may call, as the vendor is told about it. */
export interface RealtimeToolSpec {
  /** The function's name. */
  name: string;
  /** What it does, for the model. */
  description: string;
  /** JSON Schema of its arguments. */
  parameters: Record<string, unknown>;
}

/** One tool call's result, sent back to the model. */
export interface RealtimeToolResult {
  /** The vendor's id of the call it answers. */
  id: string;
  /** The function's name. */
  name: string;
  /** What the model reads: JSON text (an object with `error` for a failure), or plain text. */
  output: string;
}

/** How the session is set up. */
export interface RealtimeSessionOptions {
  /** The call's rate: audio in and out of the session is PCM at this rate. */
  sampleRate: SampleRate;
  /** The system prompt. */
  instructions: string;
  /** BCP 47 language of the answers, e.g. `en-IN`, where the vendor takes one. */
  language: string;
  /** Functions the model may call. */
  tools: RealtimeToolSpec[];
  /** Aborts the session. */
  signal?: AbortSignal;
  /** The clock the connect and close deadlines run on; the system clock when absent. */
  clock?: Clock;
}

/** Something the model did. */
export type RealtimeEvent =
  /** The session is set up and listening. */
  | { type: "ready" }
  /** The caller started speaking (the vendor's voice detection). */
  | { type: "speech_started" }
  /** The caller stopped speaking. */
  | { type: "speech_stopped" }
  /** The caller's words in a finished turn, as the vendor transcribed them. */
  | { type: "caller_text"; text: string }
  /** Part of the bot's answer: PCM at the call's rate. */
  | { type: "audio"; pcm: Uint8Array }
  /** The text of what the bot says (a piece, in order). */
  | { type: "bot_text"; text: string }
  /** The model calls a function. */
  | { type: "tool_call"; id: string; name: string; arguments: string }
  /** The model stopped its answer because the caller spoke (Gemini). */
  | { type: "interrupted" }
  /** The model finished its answer (and all its tool calls are in). */
  | { type: "response_done" }
  /** The vendor ended the session and the adapter opened a new one with the same context. */
  | { type: "resumed" };

/** A live speech-to-speech session. */
export interface RealtimeSession {
  /** What the model does, until the session ends; throws a `ProviderError` on failure. */
  events(): AsyncIterable<RealtimeEvent>;
  /** Caller audio: PCM at the call's rate, any size. */
  sendAudio(pcm: Uint8Array): void;
  /** Has the model say `text` now, word for word (the greeting, a goodbye). */
  say(text: string): void;
  /** Gives the model a line of text from the caller's side (DTMF) and asks it to answer. */
  sendText(text: string): void;
  /** Returns the results of the tool calls of the current answer; the model goes on. */
  sendToolResults(results: RealtimeToolResult[]): void;
  /**
   * The caller barged in having heard `heardMs` of the current answer: the
   * model stops, and forgets what the caller did not hear where the vendor
   * allows it.
   */
  interrupt(heardMs: number): void;
  /** Ends the session. Never rejects. */
  close(): Promise<void>;
}

/** Opens sessions with one vendor. */
export interface RealtimeModel {
  /** The vendor, e.g. `openai`, for metrics and logs. */
  readonly name: string;
  /**
   * Whether sessions report the caller starting to speak at any time. Gemini
   * reports only an answer it cut (`interrupted`), not speech over audio it
   * finished generating that is still playing: the bot detects that itself.
   */
  readonly reportsSpeechStart: boolean;
  /** Starts connecting; audio sent before the session is ready is held. */
  open(options: RealtimeSessionOptions): RealtimeSession;
}

/**
 * The instruction that makes a model say `text` as given: realtime models
 * take no "speak this" command, only instructions for their next answer.
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * assertStringIncludes(verbatim("Hello!"), '"Hello!"');
 * ```
 */
export function verbatim(text: string): string {
  return `Say exactly this, word for word, and nothing else: ${
    JSON.stringify(text)
  }`;
}
