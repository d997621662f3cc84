/**
 * The speech-to-text contract: a streaming session per call that takes caller
 * PCM as it arrives and reports transcripts and the vendor's own endpointing.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";

/** What a streaming STT session reports. */
export type SpeechEvent =
  /** The vendor heard speech begin (its VAD). */
  | { type: "speech_started" }
  /** A transcript that may still change. */
  | { type: "partial"; text: string }
  /**
   * A transcript that will not change; `endOfTurn` when the vendor judged
   * the caller's turn over; `language` (one of the session's `languages`)
   * when the vendor detected which was spoken.
   */
  | { type: "final"; text: string; endOfTurn: boolean; language?: string }
  /** The vendor judged the caller's turn over after the finals already sent. */
  | { type: "end_of_turn" };

/** Options for opening a session. */
export interface SpeechToTextOptions {
  /** Rate of the PCM that will be pushed. */
  sampleRate: number;
  /** BCP 47 language, e.g. `en-IN`, `hi-IN`. */
  language: string;
  /**
   * The languages the caller may speak, `language` among them. With more
   * than one the vendor detects the language (Deepgram `language=multi`,
   * Sarvam `language-code=unknown`) and finals report it.
   */
  languages?: string[];
  /**
   * The call ended. A session still connecting stops at once; an open one
   * says its farewell (Deepgram's `CloseStream`, Sarvam's `flush`), still
   * reports the transcript the vendor owes for what the caller said last,
   * for a bounded wait (the adapter's `hangupWaitMs`), then closes.
   */
  signal?: AbortSignal;
  /**
   * The clock that wait, the keepalive and the connect and close deadlines
   * run on; the system clock when absent.
   */
  clock?: Clock;
}

/** One live transcription stream. */
export interface SpeechToTextSession {
  /** Sends caller audio (16-bit mono PCM at the session's rate). Never blocks; never throws. */
  push(pcm: Uint8Array): void;
  /** Events as they come; ends when the session closes, throws a {@linkcode ProviderError} on failure. */
  events(): AsyncIterable<SpeechEvent>;
  /** Flushes, then closes the stream. */
  close(): Promise<void>;
}

/** A speech-to-text vendor. */
export interface SpeechToText {
  /** The vendor's name, for logs and metrics. */
  readonly name: string;
  /**
   * The silence, in ms, after which the vendor ends a turn, when we set it
   * (Deepgram's `endpointing`); absent when the vendor decides alone.
   */
  readonly endpointingMs?: number;
  /** Opens a streaming session. */
  open(options: SpeechToTextOptions): Promise<SpeechToTextSession>;
}

/**
 * The listed language a vendor's detected code stands for: the same tag, or
 * the first listed one with the same primary subtag (`hi` → `hi-IN`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { matchLanguage } from "./speech_to_text.ts";
 *
 * assertEquals(matchLanguage("hi", ["en-IN", "hi-IN"]), "hi-IN");
 * assertEquals(matchLanguage("EN-in", ["en-IN", "hi-IN"]), "en-IN");
 * assertEquals(matchLanguage("ta-IN", ["en-IN", "hi-IN"]), undefined);
 * ```
 */
export function matchLanguage(
  code: string,
  languages: readonly string[],
): string | undefined {
  const wanted = code.trim().toLowerCase();
  if (wanted === "") return undefined;
  const exact = languages.find((language) => language.toLowerCase() === wanted);
  if (exact) return exact;
  const primary = wanted.split("-")[0];
  return languages.find((language) =>
    language.toLowerCase().split("-")[0] === primary
  );
}
