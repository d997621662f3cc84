/**
 * Google's Gemini Live API over its WebSocket (`BidiGenerateContent`): one
 * session per call with the system instruction, voice, function
 * declarations, automatic activity detection and transcription of both
 * sides. Caller audio goes up as 16 kHz PCM, answers come as 24 kHz PCM;
 * both are converted from and to the call's rate here.
 *
 * The Live API ends sessions after a while (a `goAway` warns first). With
 * session resumption on, this adapter reconnects with the last resumption
 * handle, so the call goes on with its context; the bot hears a `resumed`
 * event. Only when that fails does the session fail.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { bytesForMs } from "../../audio/pcm.ts";
import { HeldAudio } from "../../audio/held_audio.ts";
import { Resampler } from "../../audio/resample.ts";
import { ProviderError } from "../provider_error.ts";
import {
  EventQueue,
  isJsonObject,
  type JsonObject,
  WsSession,
} from "../ws_session.ts";
import {
  type RealtimeEvent,
  type RealtimeModel,
  type RealtimeSession,
  type RealtimeSessionOptions,
  type RealtimeToolResult,
  verbatim,
} from "./realtime_session.ts";

const logger = getLogger(["exovoice", "providers", "realtime"]);

/** The API's documented host. */
export const GEMINI_LIVE_URL = "wss://generativelanguage.googleapis.com";

/** The Live API's method path, appended to the base URL. */
export const GEMINI_LIVE_PATH =
  "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

const INPUT_RATE = 16000;
const OUTPUT_RATE = 24000;

/** Caller audio held while (re)connecting; older audio is dropped. */
const MAX_HELD_MS = 2000;

/** Reconnections tried in a row before the session fails. */
const MAX_RESUMPTIONS = 3;

/** Settings of {@linkcode GeminiLive}. */
export interface GeminiLiveConfig {
  /** `GEMINI_API_KEY`, sent as the `x-goog-api-key` header. */
  apiKey: string;
  /** `ws://` or `wss://` base; the Live API's path is appended. */
  baseUrl: string;
  /** Model name without `models/`. */
  model: string;
  /** A prebuilt voice, e.g. `Puck`. */
  voice: string;
  /** How long the WebSocket handshake may take. */
  connectTimeoutMs: number;
}

/**
 * Opens Gemini Live sessions.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { GeminiLive } from "./gemini_live.ts";
 *
 * // Stands in for Gemini Live: sets the session up, then says one line.
 * await using gemini = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (request) => {
 *     const { socket, response } = Deno.upgradeWebSocket(request);
 *     socket.onmessage = ({ data }) => {
 *       if (!("setup" in JSON.parse(String(data)))) return;
 *       socket.send(JSON.stringify({ setupComplete: {} }));
 *       socket.send(JSON.stringify({
 *         serverContent: { outputTranscription: { text: "Hello!" }, turnComplete: true },
 *       }));
 *     };
 *     return response;
 *   },
 * );
 * const model = new GeminiLive({
 *   apiKey: "key",
 *   baseUrl: `ws://127.0.0.1:${gemini.addr.port}`,
 *   model: "gemini-2.5-flash-native-audio-preview-12-2025",
 *   voice: "Puck",
 *   connectTimeoutMs: 5000,
 * });
 * const session = model.open({
 *   sampleRate: 8000,
 *   instructions: "Be brief.",
 *   language: "en-IN",
 *   tools: [],
 * });
 * const seen: string[] = [];
 * for await (const event of session.events()) {
 *   seen.push(event.type === "bot_text" ? event.text : event.type);
 *   if (event.type === "response_done") break;
 * }
 * await session.close();
 * assertEquals(seen, ["ready", "Hello!", "response_done"]);
 * ```
 */
export class GeminiLive implements RealtimeModel {
  readonly name = "gemini";
  readonly reportsSpeechStart = false;
  #config: GeminiLiveConfig;

  /** Creates the model from its settings. */
  constructor(config: GeminiLiveConfig) {
    this.#config = config;
  }

  /** Starts a session for one call. */
  open(options: RealtimeSessionOptions): RealtimeSession {
    return new GeminiLiveSession(this.#config, options);
  }
}

class GeminiLiveSession implements RealtimeSession {
  #config: GeminiLiveConfig;
  #options: RealtimeSessionOptions;
  #queue = new EventQueue<RealtimeEvent>();
  #ws!: WsSession<RealtimeEvent>;
  #toModel: Resampler | undefined;
  #fromModel: Resampler | undefined;
  #ready = false;
  #held = new HeldAudio(bytesForMs(MAX_HELD_MS, INPUT_RATE));
  /** Messages waiting for the setup to complete, which must come first. */
  #waiting: string[] = [];
  #handle: string | undefined;
  #resumptions = 0;
  #closing = false;
  /** Set after `interrupted`: audio of the cut answer still in flight is dropped. */
  #dropAudio = false;
  #callerText = "";

  constructor(config: GeminiLiveConfig, options: RealtimeSessionOptions) {
    this.#config = config;
    this.#options = options;
    const { sampleRate } = options;
    if (sampleRate !== INPUT_RATE) {
      this.#toModel = new Resampler(sampleRate, INPUT_RATE);
    }
    if (sampleRate !== OUTPUT_RATE) {
      this.#fromModel = new Resampler(OUTPUT_RATE, sampleRate);
    }
    this.#connect();
  }

  events(): AsyncIterable<RealtimeEvent> {
    return this.#queue;
  }

  sendAudio(pcm: Uint8Array): void {
    const audio = this.#toModel ? this.#toModel.push(pcm) : pcm;
    if (audio.length === 0) return;
    if (!this.#ready) {
      this.#held.push(audio);
      return;
    }
    this.#sendAudioNow(audio);
  }

  say(text: string): void {
    this.#sendTurn(verbatim(text));
  }

  sendText(text: string): void {
    this.#sendTurn(text);
  }

  sendToolResults(results: RealtimeToolResult[]): void {
    this.#send({
      toolResponse: {
        functionResponses: results.map(({ id, name, output }) => ({
          id,
          name,
          response: responseObject(output),
        })),
      },
    });
  }

  interrupt(_heardMs: number): void {
    // Gemini stops its answer itself when the caller speaks and keeps only
    // what it generated; there is no way to tell it what was heard.
    this.#dropAudio = true;
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#ws.close();
    this.#queue.end();
  }

  #connect(): void {
    this.#ready = false;
    const url = new URL(
      `${this.#config.baseUrl.replace(/\/$/, "")}${GEMINI_LIVE_PATH}`,
    );
    const ws = new WsSession<RealtimeEvent>({
      provider: "gemini",
      vendor: "Gemini Live",
      url,
      // The documented `?key=` would put the key in URLs, which end up in
      // logs; Google's APIs take the same key as this header.
      headers: { "x-goog-api-key": this.#config.apiKey },
      connectTimeoutMs: this.#config.connectTimeoutMs,
      closeTimeoutMs: 1000,
      maxPendingBytes: 1 << 20,
      signal: this.#options.signal,
      clock: this.#options.clock,
      textInBinaryFrames: true,
      onMessage: (message) => this.#receive(message),
      farewell: () => [],
      settled: () => Promise.resolve(),
    });
    this.#ws = ws;
    ws.send(JSON.stringify({ setup: this.#setup() }));
    this.#watch(ws);
  }

  /** Follows one connection to its end: resumes it, or ends the session. */
  async #watch(ws: WsSession<RealtimeEvent>): Promise<void> {
    let failure: unknown;
    try {
      for await (const _ of ws.events()) {
        // Events go to the session's queue from #receive.
      }
    } catch (error) {
      failure = error;
    }
    if (this.#closing || ws !== this.#ws) return;
    if (this.#handle !== undefined && this.#resumptions < MAX_RESUMPTIONS) {
      this.#resumptions++;
      logger.info("Gemini Live session ended; resuming it ({attempt})", {
        attempt: this.#resumptions,
      });
      this.#connect();
      return;
    }
    this.#queue.fail(
      failure ?? new ProviderError("gemini", {
        kind: "network",
        message: "Gemini Live ended the session and it could not be resumed",
      }),
    );
  }

  #setup(): JsonObject {
    const { model, voice } = this.#config;
    const { language } = this.#options;
    const tools = this.#options.tools;
    return {
      model: model.startsWith("models/") ? model : `models/${model}`,
      generationConfig: {
        responseModalities: ["AUDIO"],
        speechConfig: {
          voiceConfig: { prebuiltVoiceConfig: { voiceName: voice } },
          languageCode: language,
        },
      },
      systemInstruction: { parts: [{ text: this.#options.instructions }] },
      tools: tools.length === 0 ? [] : [{
        functionDeclarations: tools.map((
          { name, description, parameters },
        ) => ({
          name,
          description,
          parametersJsonSchema: parameters,
        })),
      }],
      realtimeInputConfig: {
        automaticActivityDetection: { disabled: false },
      },
      inputAudioTranscription: {},
      outputAudioTranscription: {},
      sessionResumption: this.#handle ? { handle: this.#handle } : {},
      contextWindowCompression: { slidingWindow: {} },
    };
  }

  #receive(message: JsonObject): void {
    const emit = (event: RealtimeEvent) => this.#queue.push(event);
    if (isJsonObject(message.setupComplete)) {
      const resumed = this.#resumptions > 0;
      this.#ready = true;
      emit({ type: resumed ? "resumed" : "ready" });
      this.#flushHeld();
    }
    if (isJsonObject(message.sessionResumptionUpdate)) {
      const update = message.sessionResumptionUpdate;
      if (update.resumable === true && typeof update.newHandle === "string") {
        this.#handle = update.newHandle;
        this.#resumptions = 0;
      }
    }
    if (isJsonObject(message.serverContent)) {
      this.#content(message.serverContent, emit);
    }
    if (isJsonObject(message.toolCall)) this.#toolCall(message.toolCall, emit);
    if (isJsonObject(message.goAway)) {
      logger.info("Gemini Live will end the session in {timeLeft}", {
        timeLeft: String(message.goAway.timeLeft ?? "a moment"),
      });
      // Reconnect now, with the latest handle, rather than be cut mid-word.
      if (this.#handle !== undefined) this.#ws.close();
    }
  }

  #content(content: JsonObject, emit: (event: RealtimeEvent) => void): void {
    const input = isJsonObject(content.inputTranscription)
      ? content.inputTranscription
      : {};
    if (typeof input.text === "string") this.#callerText += input.text;
    if (content.interrupted === true) {
      this.#dropAudio = true;
      this.#fromModel?.reset();
      emit({ type: "interrupted" });
    }
    const turn = isJsonObject(content.modelTurn) ? content.modelTurn : {};
    const parts = Array.isArray(turn.parts) ? turn.parts : [];
    if (parts.length > 0) {
      if (content.interrupted !== true) this.#dropAudio = false;
      this.#flushCallerText(emit);
    }
    for (const part of parts) {
      if (!isJsonObject(part) || !isJsonObject(part.inlineData)) continue;
      const { data } = part.inlineData;
      if (typeof data !== "string" || this.#dropAudio) continue;
      let bytes: Uint8Array;
      try {
        bytes = Uint8Array.fromBase64(data);
      } catch {
        throw new ProviderError("gemini", {
          kind: "protocol",
          message: "Gemini Live sent audio that is not base64",
        });
      }
      const pcm = this.#fromModel ? this.#fromModel.push(bytes) : bytes;
      if (pcm.length > 0) emit({ type: "audio", pcm });
    }
    const output = isJsonObject(content.outputTranscription)
      ? content.outputTranscription
      : {};
    if (typeof output.text === "string" && output.text && !this.#dropAudio) {
      emit({ type: "bot_text", text: output.text });
    }
    if (content.turnComplete === true) {
      this.#flushCallerText(emit);
      const tail = this.#fromModel?.flush();
      if (tail && tail.length > 0 && !this.#dropAudio) {
        emit({ type: "audio", pcm: tail });
      }
      if (!this.#dropAudio) emit({ type: "response_done" });
      this.#dropAudio = false;
    }
  }

  #toolCall(call: JsonObject, emit: (event: RealtimeEvent) => void): void {
    const calls = Array.isArray(call.functionCalls) ? call.functionCalls : [];
    this.#flushCallerText(emit);
    for (const functionCall of calls) {
      if (!isJsonObject(functionCall)) continue;
      emit({
        type: "tool_call",
        id: typeof functionCall.id === "string" ? functionCall.id : "",
        name: typeof functionCall.name === "string" ? functionCall.name : "",
        arguments: JSON.stringify(functionCall.args ?? {}),
      });
    }
    // The model waits for the results: its answer so far is complete.
    if (calls.length > 0) emit({ type: "response_done" });
  }

  #flushCallerText(emit: (event: RealtimeEvent) => void): void {
    const text = this.#callerText.trim();
    this.#callerText = "";
    if (text) emit({ type: "caller_text", text });
  }

  #sendTurn(text: string): void {
    this.#send({
      clientContent: {
        turns: [{ role: "user", parts: [{ text }] }],
        turnComplete: true,
      },
    });
  }

  #sendAudioNow(audio: Uint8Array): void {
    this.#send({
      realtimeInput: {
        audio: {
          data: audio.toBase64(),
          mimeType: `audio/pcm;rate=${INPUT_RATE}`,
        },
      },
    });
  }

  #flushHeld(): void {
    for (const message of this.#waiting.splice(0)) this.#ws.send(message);
    for (const audio of this.#held.take()) this.#sendAudioNow(audio);
  }

  #send(message: JsonObject): void {
    const text = JSON.stringify(message);
    if (this.#ready) this.#ws.send(text);
    else this.#waiting.push(text);
  }
}

/** A tool's result as Gemini takes it: a JSON object (other values go under `result`). */
function responseObject(output: string): JsonObject {
  try {
    const value: unknown = JSON.parse(output);
    return isJsonObject(value) ? value : { result: value };
  } catch {
    return { result: output };
  }
}
