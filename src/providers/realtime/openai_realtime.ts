/**
 * OpenAI's Realtime API (the GA interface) over its WebSocket: one session
 * per call, `session.type: "realtime"`, audio both ways, server or semantic
 * voice detection, input transcription, function calls, and truncation of
 * an interrupted answer at what the caller heard. Azure OpenAI works through
 * the base URL and an `api-key` header.
 *
 * Audio: the API takes 24 kHz PCM or 8 kHz G.711. At 8 kHz the session
 * speaks μ-law (`audio/pcmu`) by default: no resampling either way and a
 * sixth of the bytes of 24 kHz PCM (figures in `bench/realtime_bench.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeMulaw, encodeMulaw } from "../../audio/mulaw.ts";
import { bytesForMs, durationMs } from "../../audio/pcm.ts";
import { HeldAudio } from "../../audio/held_audio.ts";
import { Resampler } from "../../audio/resample.ts";
import { ProviderError } from "../provider_error.ts";
import { isJsonObject, type JsonObject, WsSession } from "../ws_session.ts";
import {
  type RealtimeEvent,
  type RealtimeModel,
  type RealtimeSession,
  type RealtimeSessionOptions,
  type RealtimeToolResult,
  verbatim,
} from "./realtime_session.ts";

const logger = getLogger(["exovoice", "providers", "realtime"]);

/** The API's documented default host. */
export const OPENAI_REALTIME_URL = "wss://api.openai.com";

/** The rate of the API's PCM audio. */
const PCM_RATE = 24000;

/** Caller audio held while the session is set up; older audio is dropped. */
const MAX_HELD_MS = 2000;

/** How the API detects the end of the caller's turn. */
export type TurnDetection = "server_vad" | "semantic_vad";

/** Audio format on the wire for 8 kHz calls. */
export type NarrowbandFormat = "pcmu" | "pcm";

/** Settings of {@linkcode OpenAiRealtime}. */
export interface OpenAiRealtimeConfig {
  /** `OPENAI_API_KEY` (or Azure's key), sent in the `apiKeyHeader` header. */
  apiKey: string;
  /** `ws://` or `wss://` base; `/v1/realtime?model=…` is appended. */
  baseUrl: string;
  /** The header carrying the key: `authorization` (Bearer) or `api-key` (Azure). */
  apiKeyHeader: string;
  /** The realtime model, e.g. `gpt-realtime`. */
  model: string;
  /** The voice the answers are spoken in, e.g. `marin`. */
  voice: string;
  /** How the end of the caller's turn is detected. */
  turnDetection: TurnDetection;
  /** Model transcribing the caller, for the record. */
  transcriptionModel: string;
  /** Wire format of 8 kHz calls. */
  narrowbandFormat: NarrowbandFormat;
  /** How long the WebSocket handshake may take. */
  connectTimeoutMs: number;
}

/**
 * Opens OpenAI Realtime sessions.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { OpenAiRealtime } from "./openai_realtime.ts";
 *
 * // Stands in for OpenAI Realtime: confirms the session, then says one line.
 * await using openai = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (request) => {
 *     const { socket, response } = Deno.upgradeWebSocket(request);
 *     socket.onmessage = ({ data }) => {
 *       if (JSON.parse(String(data)).type !== "session.update") return;
 *       for (
 *         const event of [
 *           { type: "session.updated" },
 *           { type: "response.created", response: { id: "resp_1" } },
 *           { type: "response.output_audio_transcript.delta", response_id: "resp_1", delta: "Hello!" },
 *           { type: "response.done", response: { id: "resp_1", status: "completed" } },
 *         ]
 *       ) socket.send(JSON.stringify(event));
 *     };
 *     return response;
 *   },
 * );
 * const model = new OpenAiRealtime({
 *   apiKey: "sk-example",
 *   baseUrl: `ws://127.0.0.1:${openai.addr.port}`,
 *   apiKeyHeader: "authorization",
 *   model: "gpt-realtime",
 *   voice: "marin",
 *   turnDetection: "server_vad",
 *   transcriptionModel: "gpt-4o-mini-transcribe",
 *   narrowbandFormat: "pcmu",
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
export class OpenAiRealtime implements RealtimeModel {
  readonly name = "openai";
  readonly reportsSpeechStart = true;
  #config: OpenAiRealtimeConfig;

  /** Creates the model from its settings. */
  constructor(config: OpenAiRealtimeConfig) {
    this.#config = config;
  }

  /** Starts a session for one call. */
  open(options: RealtimeSessionOptions): RealtimeSession {
    return new OpenAiRealtimeSession(this.#config, options);
  }
}

class OpenAiRealtimeSession implements RealtimeSession {
  #ws: WsSession<RealtimeEvent>;
  #options: RealtimeSessionOptions;
  #mulaw: boolean;
  #toModel: Resampler | undefined;
  #fromModel: Resampler | undefined;
  #ready = false;
  #held: HeldAudio;
  /** The answer being spoken, and the audio item it streams. */
  #responseId: string | undefined;
  #audioItemId: string | undefined;
  #audioItemMs = 0;
  /** Answers cut by the caller: their late audio is dropped. */
  #cancelled = new Set<string>();

  constructor(config: OpenAiRealtimeConfig, options: RealtimeSessionOptions) {
    this.#options = options;
    const { sampleRate } = options;
    this.#mulaw = sampleRate === 8000 && config.narrowbandFormat === "pcmu";
    this.#held = new HeldAudio(
      this.#mulaw ? MAX_HELD_MS * 8 : bytesForMs(MAX_HELD_MS, PCM_RATE),
    );
    if (!this.#mulaw && sampleRate !== PCM_RATE) {
      this.#toModel = new Resampler(sampleRate, PCM_RATE);
      this.#fromModel = new Resampler(PCM_RATE, sampleRate);
    }
    const url = new URL(
      `${config.baseUrl.replace(/\/$/, "")}/v1/realtime`,
    );
    url.searchParams.set("model", config.model);
    const key = config.apiKeyHeader.toLowerCase() === "authorization"
      ? `Bearer ${config.apiKey}`
      : config.apiKey;
    this.#ws = new WsSession<RealtimeEvent>({
      provider: "openai",
      vendor: "OpenAI Realtime",
      url,
      headers: { [config.apiKeyHeader]: key },
      connectTimeoutMs: config.connectTimeoutMs,
      closeTimeoutMs: 1000,
      // Only the session.update waits for the socket: audio waits for the
      // session to be set up, here.
      maxPendingBytes: 1 << 20,
      signal: options.signal,
      clock: options.clock,
      onMessage: (message, emit) => this.#receive(message, emit),
      farewell: () => [],
      settled: () => Promise.resolve(),
    });
    this.#send({ type: "session.update", session: this.#session(config) });
  }

  events(): AsyncIterable<RealtimeEvent> {
    return this.#ws.events();
  }

  sendAudio(pcm: Uint8Array): void {
    const audio = this.#mulaw
      ? encodeMulaw(pcm)
      : this.#toModel
      ? this.#toModel.push(pcm)
      : pcm;
    if (audio.length === 0) return;
    if (!this.#ready) {
      this.#held.push(audio);
      return;
    }
    this.#send({ type: "input_audio_buffer.append", audio: audio.toBase64() });
  }

  say(text: string): void {
    this.#send({
      type: "response.create",
      response: { instructions: verbatim(text) },
    });
  }

  sendText(text: string): void {
    this.#send({
      type: "conversation.item.create",
      item: {
        type: "message",
        role: "user",
        content: [{ type: "input_text", text }],
      },
    });
    this.#send({ type: "response.create" });
  }

  sendToolResults(results: RealtimeToolResult[]): void {
    for (const { id, output } of results) {
      this.#send({
        type: "conversation.item.create",
        item: {
          type: "function_call_output",
          call_id: id,
          output,
        },
      });
    }
    this.#send({ type: "response.create" });
  }

  interrupt(heardMs: number): void {
    if (this.#responseId !== undefined) {
      this.#cancelled.add(this.#responseId);
      this.#send({ type: "response.cancel" });
    }
    if (this.#audioItemId !== undefined) {
      // The API refuses a position past the audio it sent.
      const audioEndMs = Math.max(
        0,
        Math.min(Math.round(heardMs), Math.floor(this.#audioItemMs)),
      );
      this.#send({
        type: "conversation.item.truncate",
        item_id: this.#audioItemId,
        content_index: 0,
        audio_end_ms: audioEndMs,
      });
      this.#audioItemId = undefined;
    }
  }

  close(): Promise<void> {
    return this.#ws.close();
  }

  #session(config: OpenAiRealtimeConfig): JsonObject {
    const format = this.#mulaw
      ? { type: "audio/pcmu" }
      : { type: "audio/pcm", rate: PCM_RATE };
    return {
      type: "realtime",
      model: config.model,
      instructions: this.#options.instructions,
      output_modalities: ["audio"],
      audio: {
        input: {
          format,
          transcription: { model: config.transcriptionModel },
          turn_detection: {
            type: config.turnDetection,
            create_response: true,
            interrupt_response: true,
          },
        },
        output: { format, voice: config.voice },
      },
      tools: this.#options.tools.map((tool) => ({ type: "function", ...tool })),
      tool_choice: "auto",
    };
  }

  #receive(message: JsonObject, emit: (event: RealtimeEvent) => void): void {
    switch (message.type) {
      case "session.updated":
        if (!this.#ready) {
          this.#ready = true;
          emit({ type: "ready" });
          this.#flushHeld();
        }
        return;
      case "input_audio_buffer.speech_started":
        emit({ type: "speech_started" });
        return;
      case "input_audio_buffer.speech_stopped":
        emit({ type: "speech_stopped" });
        return;
      case "conversation.item.input_audio_transcription.completed":
        if (typeof message.transcript === "string" && message.transcript) {
          emit({ type: "caller_text", text: message.transcript.trim() });
        }
        return;
      case "response.created": {
        const response = isJsonObject(message.response) ? message.response : {};
        this.#responseId = stringOr(response.id, undefined);
        return;
      }
      case "response.output_audio.delta":
        this.#audio(message, emit);
        return;
      case "response.output_audio_transcript.delta":
        if (this.#isLive(message) && typeof message.delta === "string") {
          emit({ type: "bot_text", text: message.delta });
        }
        return;
      case "response.output_item.done":
        this.#itemDone(message, emit);
        return;
      case "response.done":
        this.#responseDone(message, emit);
        return;
      case "error":
        this.#error(message);
        return;
    }
  }

  #audio(message: JsonObject, emit: (event: RealtimeEvent) => void): void {
    if (!this.#isLive(message) || typeof message.delta !== "string") return;
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.fromBase64(message.delta);
    } catch {
      throw new ProviderError("openai", {
        kind: "protocol",
        message: "OpenAI Realtime sent audio that is not base64",
      });
    }
    const itemId = stringOr(message.item_id, undefined);
    if (itemId !== this.#audioItemId) {
      this.#audioItemId = itemId;
      this.#audioItemMs = 0;
    }
    const pcm = this.#mulaw
      ? decodeMulaw(bytes)
      : this.#fromModel
      ? this.#fromModel.push(bytes)
      : bytes;
    this.#audioItemMs += this.#mulaw
      ? bytes.length / 8
      : durationMs(bytes.length, PCM_RATE);
    if (pcm.length > 0) emit({ type: "audio", pcm });
  }

  #itemDone(message: JsonObject, emit: (event: RealtimeEvent) => void): void {
    const item = isJsonObject(message.item) ? message.item : {};
    if (item.type !== "function_call" || !this.#isLive(message)) return;
    emit({
      type: "tool_call",
      id: stringOr(item.call_id, ""),
      name: stringOr(item.name, ""),
      arguments: stringOr(item.arguments, "{}"),
    });
  }

  #responseDone(
    message: JsonObject,
    emit: (event: RealtimeEvent) => void,
  ): void {
    const response = isJsonObject(message.response) ? message.response : {};
    const id = stringOr(response.id, undefined);
    const live = id === undefined || !this.#cancelled.delete(id);
    if (id === this.#responseId) this.#responseId = undefined;
    const tail = this.#fromModel?.flush();
    if (live && tail && tail.length > 0) emit({ type: "audio", pcm: tail });
    if (response.status === "failed") {
      const details = isJsonObject(response.status_details)
        ? response.status_details
        : {};
      const error = isJsonObject(details.error) ? details.error : {};
      logger.warn("OpenAI Realtime answer failed: {message}", {
        message: stringOr(error.message, "no reason given"),
      });
    }
    if (live) emit({ type: "response_done" });
  }

  #error(message: JsonObject): void {
    const error = isJsonObject(message.error) ? message.error : {};
    const code = stringOr(error.code, "");
    const text = stringOr(error.message, "no message");
    // Most error events refuse one client event and the session goes on
    // (a truncate past the audio, a cancel with nothing to cancel); an
    // expired session is followed by the close, which fails the call.
    logger.warn("OpenAI Realtime reported an error {code}: {message}", {
      code,
      message: text,
    });
  }

  /** Whether an event belongs to an answer the caller did not cut. */
  #isLive(message: JsonObject): boolean {
    const id = stringOr(message.response_id, undefined);
    return id === undefined || !this.#cancelled.has(id);
  }

  #flushHeld(): void {
    for (const audio of this.#held.take()) {
      this.#send({
        type: "input_audio_buffer.append",
        audio: audio.toBase64(),
      });
    }
  }

  #send(event: JsonObject): void {
    this.#ws.send(JSON.stringify(event));
  }
}

function stringOr<T>(value: unknown, fallback: T): string | T {
  return typeof value === "string" ? value : fallback;
}
