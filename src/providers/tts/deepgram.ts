/**
 * Deepgram Aura text-to-speech over its REST endpoint, whose response body
 * streams as it is synthesised:
 *
 * `POST {baseUrl}/v1/speak?model=<voice>&encoding=linear16&sample_rate=<rate>&container=none`
 * with `Authorization: Token <key>` and the JSON body `{"text": "…"}`.
 * `container=none` makes the body raw 16-bit little-endian PCM (the default
 * `wav` container would put a header in front of the audio).
 *
 * Errors, aborts and deadlines behave as described in `http_stream.ts`.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import { endpoint } from "./http_stream.ts";
import { HttpTextToSpeech } from "./http_text_to_speech.ts";

/** Rates Deepgram produces `linear16` audio at. */
export const DEEPGRAM_SAMPLE_RATES: readonly number[] = [
  8000,
  16000,
  24000,
  32000,
  48000,
];

/** The public Deepgram API. */
export const DEEPGRAM_BASE_URL = "https://api.deepgram.com";

/** Options of a {@linkcode DeepgramTts}. */
export interface DeepgramTtsOptions {
  /** A Deepgram API key. */
  apiKey: string;
  /** The Aura model, which names the voice and language, e.g. `aura-2-thalia-en`. */
  voice: string;
  /** Where the API lives; {@linkcode DEEPGRAM_BASE_URL} by default. */
  baseUrl?: string;
  /** Deadline for the first byte, and for each later wait for bytes, in ms. */
  timeoutMs: number;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the deadline runs on; the system clock by default. */
  clock?: Clock;
}

/**
 * Deepgram Aura as a `TextToSpeech`: it asks for the call's rate, or the
 * lowest supported rate above it. The voice carries the language, so the
 * call's language is not sent.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const asked: string[] = [];
 * const tts = new DeepgramTts({
 *   apiKey: "dg-key",
 *   voice: "aura-2-thalia-en",
 *   timeoutMs: 5000,
 *   // A stand-in for api.deepgram.com: 20 ms of silence at 8 kHz.
 *   fetch: (url) => {
 *     asked.push(String(url));
 *     return Promise.resolve(new Response(new Uint8Array(320)));
 *   },
 * });
 * const { sampleRate, audio } = await tts.synthesize("Hello!", { sampleRate: 8000 });
 * assertEquals(sampleRate, 8000);
 * assertEquals((await Array.fromAsync(audio))[0].length, 320);
 * assertEquals(
 *   asked[0],
 *   "https://api.deepgram.com/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=8000&container=none",
 * );
 * ```
 */
export class DeepgramTts extends HttpTextToSpeech {
  /** Creates the adapter; nothing is sent until `synthesize`. */
  constructor(options: DeepgramTtsOptions) {
    const { apiKey, voice, baseUrl, timeoutMs, fetch } = options;
    super({
      name: "deepgram",
      voice,
      apiKey,
      sampleRates: DEEPGRAM_SAMPLE_RATES,
      timeoutMs,
      fetch,
      clock: options.clock,
      request(text, { sampleRate }) {
        const url = endpoint(baseUrl ?? DEEPGRAM_BASE_URL, "v1/speak");
        url.searchParams.set("model", voice);
        url.searchParams.set("encoding", "linear16");
        url.searchParams.set("sample_rate", String(sampleRate));
        url.searchParams.set("container", "none");
        return {
          url,
          headers: { authorization: `Token ${apiKey}` },
          body: { text },
        };
      },
    });
  }
}
