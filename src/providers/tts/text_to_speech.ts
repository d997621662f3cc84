/**
 * The text-to-speech contract: text in, 16-bit PCM out as it is synthesised.
 *
 * @module
 */

/** Options of a synthesis. */
export interface SynthesisOptions {
  /** The rate the caller's line plays at. Vendors that cannot produce it return their own rate. */
  sampleRate: number;
  /** BCP 47 language, e.g. `en-IN`. */
  language?: string;
  /** Aborts the request (barge-in). */
  signal?: AbortSignal;
}

/** Synthesised audio as it streams. */
export interface Synthesis {
  /** The rate of `audio`: the requested one when the vendor supports it. */
  sampleRate: number;
  /** 16-bit little-endian mono PCM, in pieces of any (even) size. */
  audio: AsyncIterable<Uint8Array>;
}

/** A text-to-speech vendor. */
export interface TextToSpeech {
  /** The vendor's name, for logs and metrics. */
  readonly name: string;
  /** The voice used, part of the greeting cache key. */
  readonly voice: string;
  /** Starts synthesising `text`. Throws a {@linkcode ProviderError} on failure. */
  synthesize(text: string, options: SynthesisOptions): Promise<Synthesis>;
}
