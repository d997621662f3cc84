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

import type {
  Synthesis,
  SynthesisOptions,
  TextToSpeech,
} from "./text_to_speech.ts";
import { endpoint, openAudioStream } from "./http_stream.ts";
import { evenPieces } from "./even_pieces.ts";
import { chooseSampleRate } from "./sample_rate.ts";

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
 * ElevenLabs as a {@linkcode TextToSpeech}.
 *
 * @example
 * ```ts
 * const tts = new ElevenLabsTts({
 *   apiKey: Deno.env.get("ELEVENLABS_API_KEY") ?? "",
 *   voice: "JBFqnCBsd6RMkjVDRZzb",
 *   timeoutMs: 5000,
 * });
 * const { sampleRate, audio } = await tts.synthesize("Hello!", { sampleRate: 8000 });
 * ```
 */
export class ElevenLabsTts implements TextToSpeech {
  /** Always `elevenlabs`. */
  readonly name = "elevenlabs";
  /** The voice id. */
  readonly voice: string;
  readonly #options: ElevenLabsTtsOptions;

  /** Creates the adapter; nothing is sent until {@linkcode synthesize}. */
  constructor(options: ElevenLabsTtsOptions) {
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
      ELEVENLABS_SAMPLE_RATES,
    );
    if (text.trim() === "") return { sampleRate, audio: evenPieces([]) };
    const { apiKey, baseUrl, timeoutMs, fetch } = this.#options;
    const url = endpoint(
      baseUrl ?? ELEVENLABS_BASE_URL,
      `v1/text-to-speech/${encodeURIComponent(this.voice)}/stream`,
    );
    url.searchParams.set("output_format", `pcm_${sampleRate}`);
    const pieces = await openAudioStream(
      {
        url,
        headers: { "xi-api-key": apiKey },
        body: this.#body(text, options.language),
      },
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

  #body(text: string, language: string | undefined): Record<string, unknown> {
    const { model, voiceSettings, enforceLanguage } = this.#options;
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
}
