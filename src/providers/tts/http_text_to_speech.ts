/**
 * The one base of the HTTP text-to-speech adapters: what every vendor does
 * alike (pick the sample rate, skip blank text, send one request under the
 * deadline and abort of `http_stream.ts`, hand back whole 16-bit samples as
 * they stream) lives here; a vendor says only how its request looks and,
 * when its answer is not a PCM stream, how to read it.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import type {
  Synthesis,
  SynthesisOptions,
  TextToSpeech,
} from "./text_to_speech.ts";
import {
  openAudioStream,
  type VendorCallOptions,
  type VendorRequest,
} from "./http_stream.ts";
import { evenPieces } from "./even_pieces.ts";
import { chooseSampleRate } from "./sample_rate.ts";

/** What a vendor's request is built from. */
export interface SpeechTarget {
  /** The rate chosen among the vendor's rates for this call. */
  sampleRate: number;
  /** The call's BCP 47 language, when it has one. */
  language?: string;
}

/** What one vendor's HTTP text-to-speech differs in. */
export interface HttpVoice {
  /** The vendor's name, for errors, logs and metrics, e.g. `deepgram`. */
  name: string;
  /** The voice, part of the greeting cache key. */
  voice: string;
  /** The API key: sent by `request`, scrubbed from every error message. */
  apiKey: string;
  /** The rates the vendor produces, ascending. */
  sampleRates: readonly number[];
  /** The deadline described in `http_stream.ts`, in milliseconds. */
  timeoutMs: number;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the deadline runs on; the system clock by default. */
  clock?: Clock;
  /** The request that synthesises `text`. */
  request(text: string, target: SpeechTarget): VendorRequest;
  /**
   * Sends `request` and reads the answer. By default the answer body is
   * the audio itself, raw PCM at `target.sampleRate`, streamed.
   */
  answer?(
    request: VendorRequest,
    call: VendorCallOptions,
    target: SpeechTarget,
  ): Promise<Synthesis>;
}

/**
 * A {@linkcode TextToSpeech} over one HTTP request per utterance; the
 * vendor adapters extend it with their {@linkcode HttpVoice}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const tts = new HttpTextToSpeech({
 *   name: "example",
 *   voice: "plain",
 *   apiKey: "key",
 *   sampleRates: [8000, 16000],
 *   timeoutMs: 1000,
 *   request: (text, { sampleRate }) => ({
 *     url: new URL(`https://tts.example/speak?rate=${sampleRate}`),
 *     headers: { authorization: "Bearer key" },
 *     body: { text },
 *   }),
 * });
 * // Blank text needs no request.
 * const { sampleRate, audio } = await tts.synthesize(" ", { sampleRate: 11025 });
 * assertEquals(sampleRate, 16000);
 * assertEquals(await Array.fromAsync(audio), []);
 * ```
 */
export class HttpTextToSpeech implements TextToSpeech {
  /** The vendor's name, for logs and metrics. */
  readonly name: string;
  /** The voice used, part of the greeting cache key. */
  readonly voice: string;
  readonly #vendor: HttpVoice;

  /** Creates the adapter; nothing is sent until {@linkcode synthesize}. */
  constructor(vendor: HttpVoice) {
    this.#vendor = vendor;
    this.name = vendor.name;
    this.voice = vendor.voice;
  }

  /**
   * Synthesises `text` at the call's rate, or the lowest supported rate
   * above it. Blank text gives empty audio without a request.
   *
   * @throws {ProviderError} as `http_stream.ts` describes.
   */
  async synthesize(
    text: string,
    options: SynthesisOptions,
  ): Promise<Synthesis> {
    const vendor = this.#vendor;
    const target: SpeechTarget = {
      sampleRate: chooseSampleRate(options.sampleRate, vendor.sampleRates),
      language: options.language,
    };
    if (text.trim() === "") {
      return { sampleRate: target.sampleRate, audio: evenPieces([]) };
    }
    const request = vendor.request(text, target);
    const call: VendorCallOptions = {
      provider: vendor.name,
      timeoutMs: vendor.timeoutMs,
      secret: vendor.apiKey,
      signal: options.signal,
      fetch: vendor.fetch,
      clock: vendor.clock,
    };
    if (vendor.answer) return await vendor.answer(request, call, target);
    const pieces = await openAudioStream(request, call);
    return { sampleRate: target.sampleRate, audio: evenPieces(pieces) };
  }
}
