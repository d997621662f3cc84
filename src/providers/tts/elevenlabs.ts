/**
 * ElevenLabs text-to-speech over its streaming REST endpoint:
 *
 * `POST {baseUrl}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>`
 * with the `xi-api-key` header and the JSON body
 * `{"text", "model_id", "voice_settings"?, "language_code"?}`. The `pcm_*`
 * formats stream raw 16-bit little-endian mono PCM.
 *
 * Errors, aborts and deadlines behave as described in `http_stream.ts`.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import { endpoint } from "./http_stream.ts";
import { HttpTextToSpeech } from "./http_text_to_speech.ts";

/**
 * Rates of the `pcm_<rate>` output formats of the text-to-speech endpoints.
 * (`pcm_44100` needs a Pro subscription; telephony never asks for it.)
 */
export const ELEVENLABS_SAMPLE_RATES: readonly number[] = [
  8000,
  16000,
  22050,
  24000,
  44100,
];

/** The public ElevenLabs API. */
export const ELEVENLABS_BASE_URL = "https://api.elevenlabs.io";

/** The model used when none is given: ElevenLabs' lowest-latency one. */
export const ELEVENLABS_DEFAULT_MODEL = "eleven_flash_v2_5";

/** Per-request voice settings; those left out keep the voice's stored ones. */
export interface ElevenLabsVoiceSettings {
  /** 0–1: higher is steadier, lower more expressive. */
  stability?: number;
  /** 0–1: how closely to keep to the original voice. */
  similarityBoost?: number;
  /** 0–1: style exaggeration. */
  style?: number;
  /** Boosts similarity to the original speaker. */
  useSpeakerBoost?: boolean;
  /** Speaking speed; 1 is normal. */
  speed?: number;
}

/** Options of an {@linkcode ElevenLabsTts}. */
export interface ElevenLabsTtsOptions {
  /** An ElevenLabs API key. */
  apiKey: string;
  /** The voice id, e.g. `JBFqnCBsd6RMkjVDRZzb`. */
  voice: string;
  /** The model id; {@linkcode ELEVENLABS_DEFAULT_MODEL} by default. */
  model?: string;
  /** Where the API lives; {@linkcode ELEVENLABS_BASE_URL} by default. */
  baseUrl?: string;
  /** Deadline for the first byte, and for each later wait for bytes, in ms. */
  timeoutMs: number;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the deadline runs on; the system clock by default. */
  clock?: Clock;
  /** Overrides of the voice's stored settings. */
  voiceSettings?: ElevenLabsVoiceSettings;
  /**
   * Sends the call's language as `language_code` (ISO 639-1). Only some
   * models accept it (the Flash and Turbo v2.5 ones); others answer an error,
   * so it is off by default.
   */
  enforceLanguage?: boolean;
}

/**
 * ElevenLabs as a `TextToSpeech`: it asks for the call's rate, or the lowest
 * `pcm_*` format above it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const tts = new ElevenLabsTts({
 *   apiKey: "xi-key",
 *   voice: "JBFqnCBsd6RMkjVDRZzb",
 *   timeoutMs: 5000,
 *   // A stand-in for api.elevenlabs.io: 20 ms of silence at 8 kHz.
 *   fetch: () => Promise.resolve(new Response(new Uint8Array(320))),
 * });
 * // ElevenLabs has no 11025 Hz format: the next one up is used.
 * const { sampleRate } = await tts.synthesize("Hello!", { sampleRate: 11025 });
 * assertEquals(sampleRate, 16000);
 * ```
 */
export class ElevenLabsTts extends HttpTextToSpeech {
  /** Creates the adapter; nothing is sent until `synthesize`. */
  constructor(options: ElevenLabsTtsOptions) {
    const { apiKey, voice, baseUrl, timeoutMs, fetch } = options;
    super({
      name: "elevenlabs",
      voice,
      apiKey,
      sampleRates: ELEVENLABS_SAMPLE_RATES,
      timeoutMs,
      fetch,
      clock: options.clock,
      request(text, { sampleRate, language }) {
        const url = endpoint(
          baseUrl ?? ELEVENLABS_BASE_URL,
          `v1/text-to-speech/${encodeURIComponent(voice)}/stream`,
        );
        url.searchParams.set("output_format", `pcm_${sampleRate}`);
        return {
          url,
          headers: { "xi-api-key": apiKey },
          body: elevenLabsBody(text, language, options),
        };
      },
    });
  }
}

function elevenLabsBody(
  text: string,
  language: string | undefined,
  options: ElevenLabsTtsOptions,
): Record<string, unknown> {
  const { model, voiceSettings, enforceLanguage } = options;
  const body: Record<string, unknown> = {
    text,
    model_id: model ?? ELEVENLABS_DEFAULT_MODEL,
  };
  if (voiceSettings !== undefined) {
    body.voice_settings = {
      stability: voiceSettings.stability,
      similarity_boost: voiceSettings.similarityBoost,
      style: voiceSettings.style,
      use_speaker_boost: voiceSettings.useSpeakerBoost,
      speed: voiceSettings.speed,
    };
  }
  if (enforceLanguage === true && language !== undefined) {
    body.language_code = language.split("-")[0].toLowerCase();
  }
  return body;
}
