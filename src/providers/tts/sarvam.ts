/**
 * Sarvam Bulbul text-to-speech, for Indian languages and Indian English.
 *
 * Two documented endpoints, both with the `api-subscription-key` header and a
 * JSON body `{"text", "target_language_code", "speaker", "model",
 * "speech_sample_rate", "output_audio_codec", "pace"?}`:
 *
 * - `"stream"` (default): `POST {baseUrl}/text-to-speech/stream` with
 *   `output_audio_codec: "linear16"`; the body is the audio, streamed as it is
 *   synthesised. Should it ever arrive as a WAV file, its header is skipped.
 * - `"rest"`: `POST {baseUrl}/text-to-speech` with `output_audio_codec: "wav"`;
 *   the answer, sent once synthesis is done, is JSON
 *   `{"request_id", "audios": ["<base64 WAV>", …]}`, yielded as one piece.
 *   For API keys without streaming access.
 *
 * Errors, aborts and deadlines behave as described in `http_stream.ts`.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import { decodeWav } from "../../audio/wav.ts";
import { ProviderError } from "../provider_error.ts";
import type { Synthesis } from "./text_to_speech.ts";
import { endpoint, fetchJson, openAudioStream } from "./http_stream.ts";
import { evenPieces } from "./even_pieces.ts";
import { HttpTextToSpeech } from "./http_text_to_speech.ts";
import { concat } from "@std/bytes";

/** Rates Bulbul streams at (the REST endpoint's higher ones are not needed on a phone line). */
export const SARVAM_SAMPLE_RATES: readonly number[] = [
  8000,
  16000,
  22050,
  24000,
];

/** Languages Bulbul speaks, as Sarvam spells them. */
export const SARVAM_LANGUAGES: readonly string[] = [
  "bn-IN",
  "en-IN",
  "gu-IN",
  "hi-IN",
  "kn-IN",
  "ml-IN",
  "mr-IN",
  "od-IN",
  "pa-IN",
  "ta-IN",
  "te-IN",
];

/** The public Sarvam API. */
export const SARVAM_BASE_URL = "https://api.sarvam.ai";

/** The model used when none is given. */
export const SARVAM_DEFAULT_MODEL = "bulbul:v3";

/** Most bytes a WAV header in front of streamed audio may take. */
const MAX_WAV_HEADER_BYTES = 4096;

/** Options of a {@linkcode SarvamTts}. */
export interface SarvamTtsOptions {
  /** A Sarvam API subscription key. */
  apiKey: string;
  /** The speaker, lowercase, e.g. `shubh`; it must suit the model. */
  voice: string;
  /** The model; {@linkcode SARVAM_DEFAULT_MODEL} by default. */
  model?: string;
  /** Where the API lives; {@linkcode SARVAM_BASE_URL} by default. */
  baseUrl?: string;
  /** Deadline for the first byte (the whole answer for `"rest"`), in ms. */
  timeoutMs: number;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the deadline runs on; the system clock by default. */
  clock?: Clock;
  /** Language when the call names none or one Bulbul lacks; `en-IN` by default. */
  language?: string;
  /** Which endpoint to use, as the module doc describes; `"stream"` by default. */
  mode?: "stream" | "rest";
  /** Speaking speed; 1 is normal (v3 takes 0.5–2). Left to Sarvam when absent. */
  pace?: number;
}

/**
 * The Sarvam language code for a BCP 47 tag: its primary subtag with `-IN`
 * when Bulbul speaks it (`hi`, `hi-IN` → `hi-IN`; `en-US` → `en-IN`; Odia's
 * ISO code `or` → `od-IN`), otherwise `fallback`.
 */
export function sarvamLanguage(
  tag: string | undefined,
  fallback: string,
): string {
  if (tag === undefined) return fallback;
  let primary = tag.split("-")[0].toLowerCase();
  if (primary === "or") primary = "od";
  const code = `${primary}-IN`;
  return SARVAM_LANGUAGES.includes(code) ? code : fallback;
}

/**
 * Sarvam Bulbul as a `TextToSpeech`: it asks for the call's rate, or the
 * lowest supported rate above it (the REST answer's WAV states its own).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * let body: Record<string, unknown> = {};
 * const tts = new SarvamTts({
 *   apiKey: "sarvam-key",
 *   voice: "shubh",
 *   timeoutMs: 5000,
 *   // A stand-in for api.sarvam.ai: 20 ms of silence at 8 kHz.
 *   fetch: (_url, init) => {
 *     body = JSON.parse(String(init?.body));
 *     return Promise.resolve(new Response(new Uint8Array(320)));
 *   },
 * });
 * const { audio } = await tts.synthesize("नमस्ते", { sampleRate: 8000, language: "hi" });
 * assertEquals((await Array.fromAsync(audio)).length, 1);
 * assertEquals(body.target_language_code, "hi-IN");
 * ```
 */
export class SarvamTts extends HttpTextToSpeech {
  /** Creates the adapter; nothing is sent until `synthesize`. */
  constructor(options: SarvamTtsOptions) {
    const { apiKey, voice, baseUrl, timeoutMs, fetch, model, pace } = options;
    const rest = options.mode === "rest";
    super({
      name: "sarvam",
      voice,
      apiKey,
      sampleRates: SARVAM_SAMPLE_RATES,
      timeoutMs,
      fetch,
      clock: options.clock,
      request(text, { sampleRate, language }) {
        const body: Record<string, unknown> = {
          text,
          target_language_code: sarvamLanguage(
            language,
            options.language ?? "en-IN",
          ),
          speaker: voice,
          model: model ?? SARVAM_DEFAULT_MODEL,
          speech_sample_rate: sampleRate,
          output_audio_codec: rest ? "wav" : "linear16",
        };
        if (pace !== undefined) body.pace = pace;
        return {
          url: endpoint(
            baseUrl ?? SARVAM_BASE_URL,
            rest ? "text-to-speech" : "text-to-speech/stream",
          ),
          headers: { "api-subscription-key": apiKey },
          body,
        };
      },
      async answer(request, call, { sampleRate }) {
        if (rest) return decodeRestAnswer(await fetchJson(request, call));
        const pieces = await openAudioStream(request, call);
        return { sampleRate, audio: evenPieces(withoutWavHeader(pieces)) };
      },
    });
  }
}

/** Turns the REST answer into one piece of PCM at the rate its WAV states. */
function decodeRestAnswer(answer: unknown): Synthesis {
  const audios = (answer as { audios?: unknown } | null)?.audios;
  if (
    !Array.isArray(audios) || audios.length === 0 ||
    !audios.every((audio) => typeof audio === "string")
  ) {
    throw protocolError(
      'answered without a list of base64 WAV files in "audios"',
    );
  }
  let sampleRate = 0;
  const parts: Uint8Array[] = [];
  for (const audio of audios) {
    const wav = decodeBase64Wav(audio);
    if (sampleRate !== 0 && wav.sampleRate !== sampleRate) {
      throw protocolError(
        `answered WAV files at different rates "${sampleRate}" and "${wav.sampleRate}"`,
      );
    }
    sampleRate = wav.sampleRate;
    parts.push(wav.pcm);
  }
  return { sampleRate, audio: evenPieces(parts) };
}

/**
 * Passes raw PCM through; drops a WAV header when the stream starts with
 * one. Streamed WAV headers declare an unknown (maximal) data length, so
 * everything after the header is audio.
 */
async function* withoutWavHeader(
  pieces: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let head: Uint8Array | undefined = new Uint8Array(0);
  for await (const piece of pieces) {
    if (head === undefined) {
      yield piece;
      continue;
    }
    head = concat([head, piece]);
    if (head.length < 4) continue;
    if (!startsWithRiff(head)) {
      yield head;
      head = undefined;
      continue;
    }
    const audio = afterHeader(head);
    if (audio === undefined) continue;
    head = undefined;
    yield audio;
  }
  if (head !== undefined && head.length > 0 && !startsWithRiff(head)) {
    yield head;
  }
}

/** The audio after the WAV header in `head`, or undefined until the header is complete. */
function afterHeader(head: Uint8Array): Uint8Array | undefined {
  let pcm: Uint8Array;
  try {
    pcm = decodeWav(head).pcm;
  } catch (error) {
    if (head.length <= MAX_WAV_HEADER_BYTES) return undefined;
    throw protocolError("streamed a broken WAV header", error);
  }
  // RIFF chunks are word-aligned, so the data starts at an even offset and
  // an odd-length head ends with a byte decodeWav left out.
  return head.subarray(head.length - pcm.length - (head.length % 2));
}

function decodeBase64Wav(
  base64: string,
): { sampleRate: number; pcm: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(base64);
  } catch (error) {
    throw protocolError("answered audio that is not base64", error);
  }
  try {
    return decodeWav(bytes);
  } catch (error) {
    // A truncated file fails inside DataView, not as a WavFormatError.
    throw protocolError("answered a broken WAV file", error);
  }
}

function protocolError(what: string, cause?: unknown): ProviderError {
  return new ProviderError("sarvam", {
    kind: "protocol",
    message: `Text-to-speech request to sarvam ${what}`,
    cause,
  });
}

function startsWithRiff(bytes: Uint8Array): boolean {
  return bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[2] === 0x46 &&
    bytes[3] === 0x46;
}
