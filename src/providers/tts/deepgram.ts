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

import type {
  Synthesis,
  SynthesisOptions,
  TextToSpeech,
} from "./text_to_speech.ts";
import { endpoint, openAudioStream } from "./http_stream.ts";
import { evenPieces } from "./even_pieces.ts";
import { chooseSampleRate } from "./sample_rate.ts";

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
}

/**
 * Deepgram Aura as a {@linkcode TextToSpeech}. The voice carries the language,
 * so {@linkcode SynthesisOptions.language} is not sent.
 *
 * @example
 * ```ts
 * const tts = new DeepgramTts({
 *   apiKey: Deno.env.get("DEEPGRAM_API_KEY") ?? "",
 *   voice: "aura-2-thalia-en",
 *   timeoutMs: 5000,
 * });
 * const { sampleRate, audio } = await tts.synthesize("Hello!", { sampleRate: 8000 });
 * ```
 */
export class DeepgramTts implements TextToSpeech {
  /** Always `deepgram`. */
  readonly name = "deepgram";
  /** The Aura model. */
  readonly voice: string;
  readonly #options: DeepgramTtsOptions;

  /** Creates the adapter; nothing is sent until {@linkcode synthesize}. */
  constructor(options: DeepgramTtsOptions) {
    this.#options = options;
    this.voice = options.voice;
  }

  /**
   * Streams `text` as PCM at the call's rate, or the lowest supported rate
   * above it. Blank text gives empty audio without a request.
   */
  async synthesize(
    text: string,
    options: SynthesisOptions,
  ): Promise<Synthesis> {
    const sampleRate = chooseSampleRate(
      options.sampleRate,
      DEEPGRAM_SAMPLE_RATES,
    );
    if (text.trim() === "") return { sampleRate, audio: evenPieces([]) };
    const { apiKey, baseUrl, timeoutMs, fetch } = this.#options;
    const url = endpoint(baseUrl ?? DEEPGRAM_BASE_URL, "v1/speak");
    url.searchParams.set("model", this.voice);
    url.searchParams.set("encoding", "linear16");
    url.searchParams.set("sample_rate", String(sampleRate));
    url.searchParams.set("container", "none");
    const pieces = await openAudioStream(
      { url, headers: { authorization: `Token ${apiKey}` }, body: { text } },
      {
        provider: this.name,
        timeoutMs,
        secret: apiKey,
        signal: options.signal,
        fetch,
      },
    );
    return { sampleRate, audio: evenPieces(pieces) };
  }
}
