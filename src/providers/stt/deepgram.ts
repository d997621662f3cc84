/**
 * Deepgram live transcription (`/v1/listen` over WebSocket) as a
 * {@linkcode SpeechToText}.
 *
 * Wire format, from Deepgram's streaming API reference and its JS SDK:
 *
 * - `GET wss://api.deepgram.com/v1/listen?model&encoding=linear16&sample_rate&channels=1&language&interim_results=true&endpointing=<ms>&utterance_end_ms=<ms>&vad_events=true&smart_format=true`,
 *   authenticated with `Authorization: Token <key>`.
 * - Audio goes up as binary frames of raw PCM (an empty frame would close
 *   the stream, so none is sent); `{"type":"KeepAlive"}` text frames keep an
 *   idle stream open (it closes after 10 s without data);
 *   `{"type":"CloseStream"}` makes Deepgram flush its final results and
 *   `Metadata`, then close.
 * - Down come `Results` (`is_final`, `speech_final`,
 *   `channel.alternatives[0].transcript`), `SpeechStarted`, `UtteranceEnd`
 *   and `Metadata`; errors arrive as a close frame with a code and reason.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FakeSttServer } from "../../../tests/fakes/stt_servers.ts";
 *
 * // A stand-in for api.deepgram.com that says "Book a table" after 1 s of audio.
 * await using deepgram = await FakeSttServer.start("deepgram", {
 *   script: { turns: ["Book a table"], turnMs: 1000 },
 * });
 * const stt = new DeepgramStt({
 *   apiKey: deepgram.apiKey,
 *   baseUrl: deepgram.baseUrl, // default wss://api.deepgram.com
 *   connectTimeoutMs: 5000,
 * });
 * const session = await stt.open({ sampleRate: 8000, language: "en-IN" });
 * session.push(new Uint8Array(16000)); // 1 s of 16-bit PCM at 8 kHz
 * const events = [];
 * for await (const event of session.events()) {
 *   events.push(event);
 *   if (event.type === "final" && event.endOfTurn) await session.close();
 * }
 * assertEquals(events, [
 *   { type: "speech_started" },
 *   { type: "partial", text: "Book a" },
 *   { type: "final", text: "Book a table", endOfTurn: true },
 * ]);
 * ```
 *
 * @module
 */

import { bytesForMs } from "../../audio/pcm.ts";
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
  integerOption,
  isJsonObject,
  type JsonObject,
  WsSession,
} from "../ws_session.ts";

/** Options of {@linkcode DeepgramStt}. */
export interface DeepgramSttOptions {
  /** Deepgram API key; sent only in the `Authorization` header. */
  apiKey: string;
  /** Model, default `nova-3`. */
  model?: string;
  /** Where the API lives, default `wss://api.deepgram.com` (`ws://127.0.0.1:PORT` in tests). */
  baseUrl?: string;
  /** Silence that ends an utterance (`speech_final`), default 300 ms. */
  endpointingMs?: number;
  /** Gap after the last word that sends `UtteranceEnd`, default 1000 ms. */
  utteranceEndMs?: number;
  /** Deepgram's number, date and punctuation formatting, default on. */
  smartFormat?: boolean;
  /** How long the handshake may take. */
  connectTimeoutMs: number;
  /** How long closing may wait for Deepgram's last results, default 3000 ms. */
  closeTimeoutMs?: number;
  /**
   * How long a session whose call ended (its `signal` aborted) waits for
   * what Deepgram still owes after the farewell, default 1000 ms.
   */
  hangupWaitMs?: number;
  /** Idle time before a `KeepAlive` is sent, default 4000 ms (Deepgram says every 3–5 s); 0 disables. */
  keepAliveMs?: number;
  /** Audio held while connecting, default 5000 ms; older audio is dropped. */
  maxPendingMs?: number;
}

/** Checked options with defaults applied. */
interface DeepgramConfig {
  apiKey: string;
  model: string;
  url: URL;
  endpointingMs: number;
  utteranceEndMs: number;
  smartFormat: boolean;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  hangupWaitMs: number;
  keepAliveMs: number;
  maxPendingMs: number;
}

const DEFAULT_BASE_URL = "wss://api.deepgram.com";
const KEEP_ALIVE = JSON.stringify({ type: "KeepAlive" });
const CLOSE_STREAM = JSON.stringify({ type: "CloseStream" });

/**
 * Deepgram streaming speech-to-text.
 *
 * `open()` resolves as soon as connecting starts, so audio can be pushed at
 * once; a refused handshake or a timeout is thrown from `events()`.
 */
export class DeepgramStt implements SpeechToText {
  /** The vendor's name, for logs and metrics. */
  readonly name = "deepgram";
  #config: DeepgramConfig;

  /** Checks `options`; throws a `RangeError` quoting a bad value. */
  constructor(options: DeepgramSttOptions) {
    if (!options.apiKey) {
      throw new RangeError("Invalid apiKey: expected a non-empty string");
    }
    this.#config = {
      apiKey: options.apiKey,
      model: options.model ?? "nova-3",
      url: endpointUrl(options.baseUrl ?? DEFAULT_BASE_URL, "/v1/listen"),
      endpointingMs: integerOption(
        "endpointingMs",
        options.endpointingMs ?? 300,
        1,
      ),
      utteranceEndMs: integerOption(
        "utteranceEndMs",
        options.utteranceEndMs ?? 1000,
        1,
      ),
      smartFormat: options.smartFormat ?? true,
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
      keepAliveMs: integerOption("keepAliveMs", options.keepAliveMs ?? 4000, 0),
      maxPendingMs: integerOption(
        "maxPendingMs",
        options.maxPendingMs ?? 5000,
        1,
      ),
    };
  }

  /** The silence after which Deepgram ends a turn (`endpointing`), ms. */
  get endpointingMs(): number {
    return this.#config.endpointingMs;
  }

  /** Starts a live transcription stream of `options.sampleRate` PCM in `options.language`. */
  open(options: SpeechToTextOptions): Promise<SpeechToTextSession> {
    if (options.signal?.aborted) {
      return Promise.reject(
        new ProviderError(this.name, {
          kind: "aborted",
          message: "Deepgram session was aborted",
          cause: options.signal.reason,
        }),
      );
    }
    try {
      integerOption("sampleRate", options.sampleRate, 1);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve(new DeepgramSession(this.#config, options));
  }
}

class DeepgramSession implements SpeechToTextSession {
  #ws: WsSession<SpeechEvent>;
  #turns: TurnTracker;

  constructor(config: DeepgramConfig, options: SpeechToTextOptions) {
    const languages = options.languages ?? [];
    const detect = languages.length > 1;
    this.#turns = new TurnTracker(detect ? languages : []);
    const url = new URL(config.url);
    url.search = new URLSearchParams({
      model: config.model,
      encoding: "linear16",
      sample_rate: String(options.sampleRate),
      channels: "1",
      // Multilingual ("code-switching") mode: every word and result carries
      // the language Deepgram heard.
      language: detect ? "multi" : options.language,
      interim_results: "true",
      endpointing: String(config.endpointingMs),
      utterance_end_ms: String(config.utteranceEndMs),
      vad_events: "true",
      smart_format: String(config.smartFormat),
    }).toString();
    this.#ws = new WsSession<SpeechEvent>({
      provider: "deepgram",
      vendor: "Deepgram",
      url,
      headers: { Authorization: `Token ${config.apiKey}` },
      connectTimeoutMs: config.connectTimeoutMs,
      closeTimeoutMs: config.closeTimeoutMs,
      finishOnAbort: { waitMs: config.hangupWaitMs },
      clock: options.clock,
      maxPendingBytes: bytesForMs(config.maxPendingMs, options.sampleRate),
      signal: options.signal,
      keepAlive: { intervalMs: config.keepAliveMs, frame: () => KEEP_ALIVE },
      onMessage: (message, emit) => {
        for (const event of this.#turns.map(parseMessage(message))) emit(event);
      },
      farewell: () => [CLOSE_STREAM],
      settled: () => undefined,
    });
  }

  push(pcm: Uint8Array): void {
    if (pcm.length > 0) this.#ws.send(pcm);
  }

  events(): AsyncIterable<SpeechEvent> {
    return this.#ws.events();
  }

  close(): Promise<void> {
    return this.#ws.close();
  }
}

/** The parts of a Deepgram message this adapter uses. */
type DeepgramMessage =
  | {
    type: "Results";
    isFinal: boolean;
    speechFinal: boolean;
    transcript: string;
    /** `alternatives[0].languages` in multilingual mode, most words first. */
    languages: string[];
  }
  | { type: "SpeechStarted" }
  | { type: "UtteranceEnd" }
  | { type: "Error"; description: string }
  | { type: "other" };

function parseMessage(message: JsonObject): DeepgramMessage {
  switch (message.type) {
    case "Results": {
      const channel = isJsonObject(message.channel) ? message.channel : {};
      const alternatives = Array.isArray(channel.alternatives)
        ? channel.alternatives
        : [];
      const best: unknown = alternatives[0];
      const transcript =
        isJsonObject(best) && typeof best.transcript === "string"
          ? best.transcript.trim()
          : "";
      const languages = isJsonObject(best) && Array.isArray(best.languages)
        ? best.languages.filter((code): code is string =>
          typeof code === "string"
        )
        : [];
      return {
        type: "Results",
        isFinal: message.is_final === true,
        speechFinal: message.speech_final === true,
        transcript,
        languages,
      };
    }
    case "SpeechStarted":
      return { type: "SpeechStarted" };
    case "UtteranceEnd":
      return { type: "UtteranceEnd" };
    case "Error": {
      const description = [message.description, message.message].find((value) =>
        typeof value === "string" && value !== ""
      );
      return {
        type: "Error",
        description: String(description ?? "unknown error"),
      };
    }
    default:
      return { type: "other" };
  }
}

/**
 * Turns Deepgram results into speech events. Deepgram may report the end of
 * one utterance twice (a final with `speech_final`, then `UtteranceEnd`),
 * so an end of turn is only reported while finals are waiting for one.
 */
class TurnTracker {
  #turnOpen = false;
  #languages: string[];

  /** `languages`: the session's, when Deepgram detects which is spoken. */
  constructor(languages: string[]) {
    this.#languages = languages;
  }

  map(message: DeepgramMessage): SpeechEvent[] {
    switch (message.type) {
      case "SpeechStarted":
        return [{ type: "speech_started" }];
      case "Results":
        return this.#result(message);
      case "UtteranceEnd":
        return this.#endTurn();
      case "Error":
        throw new ProviderError("deepgram", {
          kind: "protocol",
          message: `Deepgram reported an error: "${message.description}"`,
        });
      case "other":
        return [];
    }
  }

  #result(
    message: Extract<DeepgramMessage, { type: "Results" }>,
  ): SpeechEvent[] {
    const { isFinal, speechFinal, transcript } = message;
    if (!isFinal) {
      return transcript ? [{ type: "partial", text: transcript }] : [];
    }
    if (!transcript) return speechFinal ? this.#endTurn() : [];
    this.#turnOpen = !speechFinal;
    const language = this.#languages.length > 1 && message.languages.length > 0
      ? matchLanguage(message.languages[0], this.#languages)
      : undefined;
    return [
      language === undefined
        ? { type: "final", text: transcript, endOfTurn: speechFinal }
        : { type: "final", text: transcript, endOfTurn: speechFinal, language },
    ];
  }

  #endTurn(): SpeechEvent[] {
    if (!this.#turnOpen) return [];
    this.#turnOpen = false;
    return [{ type: "end_of_turn" }];
  }
}
