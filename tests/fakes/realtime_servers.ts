/**
 * Fakes of the two speech-to-speech APIs on 127.0.0.1, speaking their
 * documented WebSocket event formats: OpenAI Realtime (the GA interface:
 * `session.update` with `session.type: "realtime"`, `input_audio_buffer.*`,
 * `response.output_audio.delta`, function calls, `conversation.item.truncate`)
 * and Gemini Live (`BidiGenerateContent`: `setup`/`setupComplete`,
 * `realtimeInput`, `serverContent` with `modelTurn`, transcriptions,
 * `interrupted` and `turnComplete`, `toolCall`/`toolResponse`, `goAway` and
 * session resumption; server messages in binary frames, as Google sends
 * them).
 *
 * Both detect the caller's speech by energy on the audio they receive, and
 * answer each finished caller turn with the next scripted reply: spoken
 * text (as {@linkcode fakeSpeech} audio at 24 kHz, or μ-law at 8 kHz) or a
 * function call. A turn that starts while an answer is streaming or
 * playing cancels it, as the real services do.
 */
import { decodeMulaw, encodeMulaw } from "../../src/audio/mulaw.ts";
import { GEMINI_LIVE_PATH } from "../../src/providers/realtime/gemini_live.ts";
import { fakeSpeech } from "./tts_servers.ts";

/** The key the fakes accept. */
export const REALTIME_KEY = "fake-realtime-key";

/** What a fake says or does when it answers. */
export type FakeReply =
  | { say: string }
  | { tool: { name: string; arguments: Record<string, unknown> } };

/** A fake's script. */
export interface FakeRealtimeScript {
  /** What the caller's turns are transcribed as, in order ("hello" after). */
  transcripts?: string[];
  /** The answers to the caller's turns and to tool results, in order. */
  replies?: FakeReply[];
  /** The answer once `replies` ran out (default: none). */
  defaultReply?: FakeReply;
  /** Delay before an answer's first audio, in ms (default 50). */
  latencyMs?: number;
  /** Close the socket abruptly this long after the session is set up. */
  dropAfterMs?: number;
  /** Gemini: send `goAway` this long after setup and close 200 ms later. */
  goAwayAfterMs?: number;
  /** Gemini: hand out session resumption handles (default true). */
  resumable?: boolean;
}

/** One connection as the fake saw it. */
export interface FakeRealtimeConnection {
  /** Every client event or message, parsed, in order. */
  received: Record<string, unknown>[];
  /** The handshake's headers. */
  headers: Headers;
  /** The request URL. */
  url: URL;
}

const ENERGY_THRESHOLD = 500;
const SPEECH_FRAMES = 3;
const SILENCE_FRAMES = 25;

/** Energy-based turn detection over 20 ms frames of 16-bit PCM. */
class EnergyTurns {
  #rate: number;
  #carry = new Uint8Array(0);
  #voiced = 0;
  #silent = 0;
  #speaking = false;

  constructor(rate: number) {
    this.#rate = rate;
  }

  /** Feeds PCM; returns the transitions it completes. */
  push(pcm: Uint8Array): ("start" | "end")[] {
    const frameBytes = this.#rate / 50 * 2;
    const all = new Uint8Array(this.#carry.length + pcm.length);
    all.set(this.#carry);
    all.set(pcm, this.#carry.length);
    const events: ("start" | "end")[] = [];
    let offset = 0;
    for (; offset + frameBytes <= all.length; offset += frameBytes) {
      const view = new DataView(
        all.buffer,
        all.byteOffset + offset,
        frameBytes,
      );
      let sum = 0;
      for (let i = 0; i < frameBytes; i += 2) {
        sum += view.getInt16(i, true) ** 2;
      }
      const loud = Math.sqrt(sum / (frameBytes / 2)) > ENERGY_THRESHOLD;
      if (loud) {
        this.#voiced++;
        this.#silent = 0;
        if (!this.#speaking && this.#voiced >= SPEECH_FRAMES) {
          this.#speaking = true;
          events.push("start");
        }
      } else {
        this.#voiced = 0;
        if (this.#speaking && ++this.#silent >= SILENCE_FRAMES) {
          this.#speaking = false;
          events.push("end");
        }
      }
    }
    this.#carry = all.slice(offset);
    return events;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The text a "say exactly" instruction asks for, if it is one. */
function verbatimText(instructions: unknown): string | undefined {
  if (typeof instructions !== "string") return undefined;
  const match = /word for word, and nothing else: (".*")$/s.exec(instructions);
  return match ? JSON.parse(match[1]) : undefined;
}

/** Common parts of both fakes: the server, the script, the connections. */
abstract class FakeRealtimeServer implements AsyncDisposable {
  readonly connections: FakeRealtimeConnection[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #sockets = new Set<WebSocket>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  script: FakeRealtimeScript = {};

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#upgrade(request),
    );
  }

  /** The `ws://` base URL to configure. */
  get baseUrl(): string {
    return `ws://127.0.0.1:${this.#server.addr.port}`;
  }

  /** The last connection's client events of `type` (OpenAI) or with key `type` (Gemini). */
  sent<T = Record<string, unknown>>(type: string): T[] {
    return this.connections.flatMap((c) => c.received).filter((event) =>
      event.type === type || type in event
    ) as unknown as T[];
  }

  protected nextTranscript(): string {
    return this.script.transcripts?.shift() ?? "hello";
  }

  protected nextReply(): FakeReply | undefined {
    return this.script.replies?.shift() ?? this.script.defaultReply;
  }

  /**
   * Each caller turn the fake detected: which audio message (counted from 0
   * over the fake's life) completed it. For benchmarks.
   */
  readonly turnEnds: { audioMessage: number }[] = [];
  protected audioMessages = 0;

  protected later(ms: number, fn: () => void): void {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    this.#timers.add(id);
  }

  protected abstract accepts(request: Request, url: URL): boolean;
  protected abstract refuse(): Response;
  protected abstract attach(
    socket: WebSocket,
    connection: FakeRealtimeConnection,
  ): void;

  #upgrade(request: Request): Response {
    const url = new URL(request.url);
    if (!this.accepts(request, url)) return this.refuse();
    const connection = {
      received: [],
      headers: new Headers(request.headers),
      url,
    };
    const { socket, response } = Deno.upgradeWebSocket(request);
    this.connections.push(connection);
    this.#sockets.add(socket);
    socket.onclose = () => this.#sockets.delete(socket);
    this.attach(socket, connection);
    return response;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const id of this.#timers) clearTimeout(id);
    for (const socket of this.#sockets) {
      try {
        socket.close();
      } catch {
        // Closing already.
      }
    }
    await this.#server.shutdown();
  }
}

/** A fake OpenAI Realtime API (GA). */
export class FakeOpenAiRealtime extends FakeRealtimeServer {
  protected accepts(request: Request, url: URL): boolean {
    return url.pathname.endsWith("/v1/realtime") &&
      (request.headers.get("authorization") === `Bearer ${REALTIME_KEY}` ||
        request.headers.get("api-key") === REALTIME_KEY);
  }

  protected refuse(): Response {
    return Response.json({
      error: {
        type: "invalid_request_error",
        code: "invalid_api_key",
        message: "Incorrect API key provided.",
      },
    }, { status: 401 });
  }

  protected attach(socket: WebSocket, connection: FakeRealtimeConnection) {
    let mulaw = false;
    let turns = new EnergyTurns(24000);
    let responseCount = 0;
    let active: { id: string; cancelled: boolean } | undefined;
    let itemCount = 0;
    let audioMs = 0;
    const send = (event: Record<string, unknown>) => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(event));
      }
    };
    const respond = async (reply: FakeReply | undefined) => {
      if (!reply) return;
      if (active) active.cancelled = true;
      const response = { id: `resp_${++responseCount}`, cancelled: false };
      active = response;
      send({
        type: "response.created",
        response: { id: response.id, status: "in_progress" },
      });
      await sleep(this.script.latencyMs ?? 50);
      if (response.cancelled) return;
      const itemId = `item_${++itemCount}`;
      if ("tool" in reply) {
        send({
          type: "response.output_item.done",
          response_id: response.id,
          item: {
            id: itemId,
            type: "function_call",
            call_id: `call_${itemCount}`,
            name: reply.tool.name,
            arguments: JSON.stringify(reply.tool.arguments),
          },
        });
      } else {
        const pcm = fakeSpeech(reply.say, mulaw ? 8000 : 24000);
        const audio = mulaw ? encodeMulaw(pcm) : pcm;
        const step = mulaw ? 800 : 4800; // 100 ms
        for (let at = 0; at < audio.length && !response.cancelled; at += step) {
          send({
            type: "response.output_audio.delta",
            response_id: response.id,
            item_id: itemId,
            output_index: 0,
            content_index: 0,
            delta: audio.subarray(at, at + step).toBase64(),
          });
          await sleep(5);
        }
        if (response.cancelled) return;
        send({
          type: "response.output_audio_transcript.delta",
          response_id: response.id,
          item_id: itemId,
          delta: reply.say,
        });
        send({
          type: "response.output_audio.done",
          response_id: response.id,
          item_id: itemId,
        });
      }
      active = undefined;
      send({
        type: "response.done",
        response: { id: response.id, status: "completed" },
      });
    };
    socket.onopen = () => {
      send({ type: "session.created", session: { type: "realtime" } });
      if (this.script.dropAfterMs !== undefined) {
        this.later(
          this.script.dropAfterMs,
          () => socket.close(1011, "internal error"),
        );
      }
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(String(message.data));
      connection.received.push(event);
      switch (event.type) {
        case "session.update": {
          const format = event.session?.audio?.input?.format?.type;
          mulaw = format === "audio/pcmu";
          turns = new EnergyTurns(mulaw ? 8000 : 24000);
          send({ type: "session.updated", session: event.session });
          return;
        }
        case "input_audio_buffer.append": {
          const bytes = Uint8Array.fromBase64(event.audio);
          const pcm = mulaw ? decodeMulaw(bytes) : bytes;
          const audioMessage = this.audioMessages++;
          audioMs += pcm.length / 2 / (mulaw ? 8 : 24);
          for (const change of turns.push(pcm)) {
            if (change === "start") {
              if (active) {
                active.cancelled = true;
                send({
                  type: "response.done",
                  response: { id: active.id, status: "cancelled" },
                });
                active = undefined;
              }
              send({
                type: "input_audio_buffer.speech_started",
                audio_start_ms: Math.round(audioMs),
                item_id: `item_${++itemCount}`,
              });
            } else {
              this.turnEnds.push({ audioMessage });
              send({
                type: "input_audio_buffer.speech_stopped",
                audio_end_ms: Math.round(audioMs),
                item_id: `item_${itemCount}`,
              });
              send({
                type: "conversation.item.input_audio_transcription.completed",
                item_id: `item_${itemCount}`,
                content_index: 0,
                transcript: this.nextTranscript(),
              });
              respond(this.nextReply());
            }
          }
          return;
        }
        case "response.create": {
          const say = verbatimText(event.response?.instructions);
          respond(say !== undefined ? { say } : this.nextReply());
          return;
        }
        case "response.cancel":
          if (active) {
            active.cancelled = true;
            send({
              type: "response.done",
              response: { id: active.id, status: "cancelled" },
            });
            active = undefined;
          }
          return;
        case "conversation.item.truncate":
          send({
            type: "conversation.item.truncated",
            item_id: event.item_id,
            content_index: 0,
            audio_end_ms: event.audio_end_ms,
          });
          return;
      }
    };
  }
}

/** A fake Gemini Live API. */
export class FakeGeminiLive extends FakeRealtimeServer {
  protected accepts(request: Request, url: URL): boolean {
    return url.pathname === GEMINI_LIVE_PATH &&
      request.headers.get("x-goog-api-key") === REALTIME_KEY;
  }

  protected refuse(): Response {
    return Response.json({
      error: {
        code: 403,
        message: "API key not valid.",
        status: "PERMISSION_DENIED",
      },
    }, { status: 403 });
  }

  protected attach(socket: WebSocket, connection: FakeRealtimeConnection) {
    const turns = new EnergyTurns(16000);
    let speaking: { cancelled: boolean } | undefined;
    let handles = 0;
    const send = (message: Record<string, unknown>) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(new TextEncoder().encode(JSON.stringify(message)));
    };
    const respond = async (reply: FakeReply | undefined) => {
      if (!reply) return;
      if (speaking) speaking.cancelled = true;
      const turn = { cancelled: false };
      speaking = turn;
      await sleep(this.script.latencyMs ?? 50);
      if (turn.cancelled) return;
      if ("tool" in reply) {
        speaking = undefined;
        send({
          toolCall: {
            functionCalls: [{
              id: `fc_${Date.now()}`,
              name: reply.tool.name,
              args: reply.tool.arguments,
            }],
          },
        });
        return;
      }
      const pcm = fakeSpeech(reply.say, 24000);
      for (let at = 0; at < pcm.length && !turn.cancelled; at += 4800) {
        send({
          serverContent: {
            modelTurn: {
              parts: [{
                inlineData: {
                  mimeType: "audio/pcm;rate=24000",
                  data: pcm.subarray(at, at + 4800).toBase64(),
                },
              }],
            },
          },
        });
        await sleep(5);
      }
      if (turn.cancelled) return;
      send({ serverContent: { outputTranscription: { text: reply.say } } });
      send({ serverContent: { generationComplete: true } });
      send({ serverContent: { turnComplete: true } });
      speaking = undefined;
    };
    socket.onmessage = (message) => {
      const event = JSON.parse(String(message.data));
      connection.received.push(event);
      if (event.setup) {
        send({ setupComplete: {} });
        if (event.setup.sessionResumption && this.script.resumable !== false) {
          send({
            sessionResumptionUpdate: {
              newHandle: `handle_${++handles}`,
              resumable: true,
            },
          });
        }
        if (this.script.dropAfterMs !== undefined) {
          this.later(
            this.script.dropAfterMs,
            () => socket.close(1011, "Internal error"),
          );
        }
        if (this.script.goAwayAfterMs !== undefined) {
          const after = this.script.goAwayAfterMs;
          this.script.goAwayAfterMs = undefined;
          this.later(after, () => {
            send({ goAway: { timeLeft: "1s" } });
            this.later(200, () => socket.close(1000));
          });
        }
        return;
      }
      if (event.realtimeInput?.audio) {
        const audioMessage = this.audioMessages++;
        for (
          const change of turns.push(
            Uint8Array.fromBase64(event.realtimeInput.audio.data),
          )
        ) {
          if (change === "start" && speaking) {
            speaking.cancelled = true;
            speaking = undefined;
            send({ serverContent: { interrupted: true } });
          } else if (change === "end") {
            this.turnEnds.push({ audioMessage });
            send({
              serverContent: {
                inputTranscription: { text: this.nextTranscript() },
              },
            });
            respond(this.nextReply());
          }
        }
        return;
      }
      if (event.clientContent) {
        const text = event.clientContent.turns?.[0]?.parts?.[0]?.text;
        const say = verbatimText(text);
        respond(say !== undefined ? { say } : this.nextReply());
        return;
      }
      if (event.toolResponse) respond(this.nextReply());
    };
  }
}
