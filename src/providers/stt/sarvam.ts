/**
 * Sarvam streaming speech-to-text (`/speech-to-text/ws`, Indian languages)
 * as a {@linkcode SpeechToText}.
 *
 * Wire format, from Sarvam's API reference, its official `sarvamai` SDK
 * (the `speechToTextStreaming` socket) and its `sarvamai/skills` tooling:
 *
 * - `GET wss://api.sarvam.ai/speech-to-text/ws?language-code&model&mode&sample_rate&input_audio_codec&vad_signals=true&flush_signal=true[&high_vad_sensitivity]`,
 *   authenticated with the `Api-Subscription-Key` header.
 * - Audio goes up as JSON text frames
 *   `{"audio":{"data":<base64>,"sample_rate":<rate>,"encoding":"audio/wav"}}`.
 *   Streaming accepts WAV or raw PCM, and raw PCM only at 16 kHz, so every
 *   chunk is sent as a small self-contained WAV (what Sarvam's own test
 *   tooling does at 8 and 16 kHz). `{"type":"flush"}` makes Sarvam finalize
 *   the utterance in progress.
 * - Down come `{"type":"events","data":{"signal_type":"START_SPEECH"|"END_SPEECH"}}`,
 *   `{"type":"data","data":{"transcript",…}}` once per utterance (this
 *   endpoint sends no interim transcripts) and
 *   `{"type":"error","data":{"error","code"}}`.
 *
 * Sarvam documents no keepalive message; like other integrations this
 * adapter can send silence on an idle stream (`keepAliveMs`, off by default
 * because silence is billed audio).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FakeSttServer } from "../../../tests/fakes/stt_servers.ts";
 *
 * // A stand-in for api.sarvam.ai that transcribes 1 s of audio.
 * await using sarvam = await FakeSttServer.start("sarvam", {
 *   script: { turns: ["मुझे कल की बुकिंग चाहिए"], turnMs: 1000 },
 * });
 * const stt = new SarvamStt({
 *   apiKey: sarvam.apiKey,
 *   baseUrl: sarvam.baseUrl, // default wss://api.sarvam.ai
 *   connectTimeoutMs: 5000,
 * });
 * const session = await stt.open({ sampleRate: 8000, language: "hi-IN" });
 * session.push(new Uint8Array(16000)); // 1 s of 16-bit PCM at 8 kHz
 * let heard = "";
 * for await (const event of session.events()) {
 *   if (event.type === "final") {
 *     heard = event.text;
 *     await session.close();
 *   }
 * }
 * assertEquals(heard, "मुझे कल की बुकिंग चाहिए");
 * // Audio goes up as small WAV files in JSON frames.
 * assertEquals((await sarvam.connection()).audioBytes, 16000);
 * ```
 *
 * @module
 */

import { bytesForMs } from "../../audio/pcm.ts";
import { encodeWav } from "../../audio/wav.ts";
import { ProviderError } from "../provider_error.ts";
import {
  matchLanguage,
  type SpeechEvent,
  type SpeechToText,
  type SpeechToTextOptions,
  type SpeechToTextSession,
} from "./speech_to_text.ts";
import {
  endpointUrl,
  type Frame,
  integerOption,
  isJsonObject,
  type JsonObject,
  WsSession,
} from "../ws_session.ts";

/** Output modes of `saaras` models. */
export type SarvamSttMode =
  | "transcribe"
  | "translate"
  | "verbatim"
  | "translit"
  | "codemix";

/** Options of {@linkcode SarvamStt}. */
export interface SarvamSttOptions {
  /** Sarvam API subscription key; sent only in the `Api-Subscription-Key` header. */
  apiKey: string;
  /** Model, default `saaras:v3`. */
  model?: string;
  /**
   * Output mode, default `transcribe` for `saaras` models and none for
   * `saarika` ones (they reject it); `null` never sends one.
   */
  mode?: SarvamSttMode | null;
  /** Where the API lives, default `wss://api.sarvam.ai` (`ws://127.0.0.1:PORT` in tests). */
  baseUrl?: string;
  /** Sarvam's more sensitive VAD (ends an utterance after about 0.5 s of silence instead of 1 s); unset leaves Sarvam's default. */
  highVadSensitivity?: boolean;
  /** Audio per message, default 100 ms (Sarvam suggests 100–500 ms). */
  chunkMs?: number;
  /** How long the handshake may take. */
  connectTimeoutMs: number;
  /** How long closing may wait for the last transcript, default 3000 ms. */
  closeTimeoutMs?: number;
  /**
   * How long a session whose call ended (its `signal` aborted) waits for
   * what Sarvam still owes after the farewell, default 1000 ms.
   */
  hangupWaitMs?: number;
  /** Idle time before silence is sent to keep the stream open; default 0 (off). */
  keepAliveMs?: number;
  /** Audio held while connecting, default 5000 ms; older audio is dropped. */
  maxPendingMs?: number;
}

/** Rates Sarvam's streaming endpoint accepts. */
const SAMPLE_RATES = [8000, 16000];

const DEFAULT_BASE_URL = "wss://api.sarvam.ai";
const FLUSH = JSON.stringify({ type: "flush" });

/** Checked options with defaults applied. */
interface SarvamConfig {
  apiKey: string;
  model: string;
  mode: SarvamSttMode | undefined;
  url: URL;
  highVadSensitivity: boolean | undefined;
  chunkMs: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  hangupWaitMs: number;
  keepAliveMs: number;
  maxPendingMs: number;
}

/**
 * Sarvam streaming speech-to-text at 8 or 16 kHz.
 *
 * `open()` resolves as soon as connecting starts, so audio can be pushed at
 * once; a refused handshake or a timeout is thrown from `events()`.
 */
export class SarvamStt implements SpeechToText {
  /** The vendor's name, for logs and metrics. */
  readonly name = "sarvam";
  #config: SarvamConfig;

  /** Checks `options`; throws a `RangeError` quoting a bad value. */
  constructor(options: SarvamSttOptions) {
    if (!options.apiKey) {
      throw new RangeError("Invalid apiKey: expected a non-empty string");
    }
    const model = options.model ?? "saaras:v3";
    this.#config = {
      apiKey: options.apiKey,
      model,
      mode: options.mode === undefined
        ? (model.startsWith("saarika:") ? undefined : "transcribe")
        : options.mode ?? undefined,
      url: endpointUrl(
        options.baseUrl ?? DEFAULT_BASE_URL,
        "/speech-to-text/ws",
      ),
      highVadSensitivity: options.highVadSensitivity,
      chunkMs: integerOption("chunkMs", options.chunkMs ?? 100, 1),
      connectTimeoutMs: integerOption(
        "connectTimeoutMs",
        options.connectTimeoutMs,
        1,
      ),
      closeTimeoutMs: integerOption(
        "closeTimeoutMs",
        options.closeTimeoutMs ?? 3000,
        1,
      ),
      hangupWaitMs: integerOption(
        "hangupWaitMs",
        options.hangupWaitMs ?? 1000,
        1,
      ),
      keepAliveMs: integerOption("keepAliveMs", options.keepAliveMs ?? 0, 0),
      maxPendingMs: integerOption(
        "maxPendingMs",
        options.maxPendingMs ?? 5000,
        1,
      ),
    };
  }

  /** Starts a stream of `options.sampleRate` PCM (8000 or 16000) in `options.language`. */
  open(options: SpeechToTextOptions): Promise<SpeechToTextSession> {
    if (options.signal?.aborted) {
      return Promise.reject(
        new ProviderError(this.name, {
          kind: "aborted",
          message: "Sarvam session was aborted",
          cause: options.signal.reason,
        }),
      );
    }
    if (!SAMPLE_RATES.includes(options.sampleRate)) {
      return Promise.reject(
        new ProviderError(this.name, {
          kind: "protocol",
          message:
            `Unsupported sample rate "${options.sampleRate}" for Sarvam: expected 8000 or 16000`,
        }),
      );
    }
    return Promise.resolve(new SarvamSession(this.#config, options));
  }
}

class SarvamSession implements SpeechToTextSession {
  #ws: WsSession<SpeechEvent>;
  #sampleRate: number;
  #chunkBytes: number;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** Sarvam heard speech and owes a transcript for it. */
  #speaking = false;
  #onTranscript: (() => void)[] = [];
  /** The session's languages when Sarvam detects which is spoken, else empty. */
  #detect: string[];

  constructor(config: SarvamConfig, options: SpeechToTextOptions) {
    const languages = options.languages ?? [];
    this.#detect = languages.length > 1 ? languages : [];
    this.#sampleRate = options.sampleRate;
    this.#chunkBytes = bytesForMs(config.chunkMs, options.sampleRate);
    const url = new URL(config.url);
    const query = new URLSearchParams({
      // "unknown" makes Sarvam detect the language; each transcript reports it.
      "language-code": this.#detect.length > 0
        ? "unknown"
        : sarvamLanguage(options.language),
      model: config.model,
    });
    if (config.mode) query.set("mode", config.mode);
    query.set("sample_rate", String(options.sampleRate));
    query.set("input_audio_codec", "wav");
    if (config.highVadSensitivity !== undefined) {
      query.set("high_vad_sensitivity", String(config.highVadSensitivity));
    }
    query.set("vad_signals", "true");
    query.set("flush_signal", "true");
    url.search = query.toString();
    const silence = new Uint8Array(this.#chunkBytes);
    this.#ws = new WsSession<SpeechEvent>({
      provider: "sarvam",
      vendor: "Sarvam",
      url,
      headers: { "Api-Subscription-Key": config.apiKey },
      connectTimeoutMs: config.connectTimeoutMs,
      closeTimeoutMs: config.closeTimeoutMs,
      finishOnAbort: { waitMs: config.hangupWaitMs },
      clock: options.clock,
      // Base64 in JSON takes about 4/3 of the PCM's bytes, plus the envelope.
      maxPendingBytes: 2 * bytesForMs(config.maxPendingMs, options.sampleRate),
      signal: options.signal,
      keepAlive: {
        intervalMs: config.keepAliveMs,
        frame: () => this.#audioFrame(silence),
      },
      onMessage: (message, emit) => {
        for (const event of this.#map(message)) emit(event);
      },
      farewell: () => this.#farewell(),
      settled: () =>
        this.#speaking ? this.#nextTranscript() : Promise.resolve(),
    });
  }

  push(pcm: Uint8Array): void {
    if (pcm.length === 0) return;
    this.#held.push(pcm.slice());
    this.#heldBytes += pcm.length;
    if (this.#heldBytes >= this.#chunkBytes) {
      const chunk = this.#takeHeld();
      if (chunk.length > 0) this.#ws.send(this.#audioFrame(chunk));
    }
  }

  events(): AsyncIterable<SpeechEvent> {
    return this.#ws.events();
  }

  close(): Promise<void> {
    return this.#ws.close();
  }

  /** The held audio, whole samples only; an odd byte stays held. */
  #takeHeld(): Uint8Array {
    const all = new Uint8Array(this.#heldBytes);
    let offset = 0;
    for (const piece of this.#held) {
      all.set(piece, offset);
      offset += piece.length;
    }
    const whole = all.length - (all.length % 2);
    this.#held = whole < all.length ? [all.slice(whole)] : [];
    this.#heldBytes = all.length - whole;
    return all.subarray(0, whole);
  }

  #audioFrame(pcm: Uint8Array): Frame {
    const wav = encodeWav({ sampleRate: this.#sampleRate, pcm });
    return JSON.stringify({
      audio: {
        data: wav.toBase64(),
        sample_rate: this.#sampleRate,
        encoding: "audio/wav",
      },
    });
  }

  #farewell(): Frame[] {
    const frames: Frame[] = [];
    const rest = this.#takeHeld();
    if (rest.length > 0) frames.push(this.#audioFrame(rest));
    frames.push(FLUSH);
    return frames;
  }

  #nextTranscript(): Promise<void> {
    return new Promise((resolve) => this.#onTranscript.push(resolve));
  }

  #map(message: JsonObject): SpeechEvent[] {
    const data = isJsonObject(message.data) ? message.data : {};
    switch (message.type) {
      case "events":
        // END_SPEECH is not the end of the turn for us: the transcript of
        // the utterance follows it, and that is what the turn ends with.
        if (data.signal_type !== "START_SPEECH") return [];
        this.#speaking = true;
        return [{ type: "speech_started" }];
      case "data": {
        this.#speaking = false;
        for (const resolve of this.#onTranscript.splice(0)) resolve();
        const transcript = typeof data.transcript === "string"
          ? data.transcript.trim()
          : "";
        if (!transcript) return [];
        const language = this.#detect.length > 0 &&
            typeof data.language_code === "string"
          ? matchLanguage(bcp47Language(data.language_code), this.#detect)
          : undefined;
        return [
          language === undefined
            ? { type: "final", text: transcript, endOfTurn: true }
            : { type: "final", text: transcript, endOfTurn: true, language },
        ];
      }
      case "error": {
        const detail = typeof data.error === "string"
          ? data.error
          : "unknown error";
        const code = typeof data.code === "string" ? ` (${data.code})` : "";
        throw new ProviderError("sarvam", {
          kind: "protocol",
          message: `Sarvam reported an error: "${detail}"${code}`,
        });
      }
      default:
        return [];
    }
  }
}

/** The BCP 47 tag for a Sarvam language code (`od-IN` is `or-IN`). */
function bcp47Language(code: string): string {
  return code === "od-IN" ? "or-IN" : code;
}

/** Sarvam's code for a BCP 47 language: it spells Odia `od-IN`, not `or-IN`. */
function sarvamLanguage(language: string): string {
  return language === "or-IN" ? "od-IN" : language;
}
