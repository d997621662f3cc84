/**
 * The speech-to-text contract: a streaming session per call that takes caller
 * PCM as it arrives and reports transcripts and the vendor's own endpointing.
 *
 * @module
 */

/** What a streaming STT session reports. */
export type SpeechEvent =
  /** The vendor heard speech begin (its VAD). */
  | { type: "speech_started" }
  /** A transcript that may still change. */
  | { type: "partial"; text: string }
  /** A transcript that will not change; `endOfTurn` when the vendor judged the caller's turn over. */
  | { type: "final"; text: string; endOfTurn: boolean }
  /** The vendor judged the caller's turn over after the finals already sent. */
  | { type: "end_of_turn" };

/** Options for opening a session. */
export interface SpeechToTextOptions {
  /** Rate of the PCM that will be pushed. */
  sampleRate: number;
  /** BCP 47 language, e.g. `en-IN`, `hi-IN`. */
  language: string;
  /** Aborts the session. */
  signal?: AbortSignal;
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
  /** Opens a streaming session. */
  open(options: SpeechToTextOptions): Promise<SpeechToTextSession>;
}
