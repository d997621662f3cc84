/**
 * Fake Deepgram and Sarvam streaming speech-to-text servers on 127.0.0.1
 * that speak each vendor's WebSocket wire format, so the real adapters run
 * against them in tests and benchmarks.
 *
 * Each server checks what the real API checks (path, auth, query
 * parameters, audio framing), counts the PCM it receives, and answers with
 * a script: for each turn it reports speech starting once
 * {@linkcode FakeSttScript.speechStartMs} of audio arrived, an interim
 * transcript halfway (Deepgram only: Sarvam's endpoint has none), and the
 * final transcript with the end of the turn once
 * {@linkcode FakeSttScript.turnMs} of audio arrived, or earlier when the
 * client flushes. {@linkcode FakeSttServer.script} makes the next
 * connections fail the ways real vendors do.
 *
 * Wire formats (from the vendors' API references and official SDKs):
 *
 * - Deepgram: `GET /v1/listen?model&encoding=linear16&sample_rate&channels&language&interim_results&endpointing&utterance_end_ms&vad_events&smart_format`,
 *   `Authorization: Token <key>` (or the `token, <key>` subprotocol);
 *   binary PCM up, `{"type":"KeepAlive"|"Finalize"|"CloseStream"}` text
 *   frames; `Results`, `SpeechStarted`, `UtteranceEnd` and `Metadata` down.
 *   A refused handshake is a 401 `{"err_code":"INVALID_AUTH"}`; a failing
 *   stream is closed with code 1011 or 1008 and a `NET-`/`DATA-` reason.
 * - Sarvam: `GET /speech-to-text/ws?language-code&model&mode&sample_rate&input_audio_codec&vad_signals&flush_signal&high_vad_sensitivity`,
 *   `Api-Subscription-Key` (or the `api-subscription-key.<key>`
 *   subprotocol); `{"audio":{"data","sample_rate","encoding"}}` and
 *   `{"type":"flush"}` up; `{"type":"events","data":{"signal_type"}}`,
 *   `{"type":"data","data":{"transcript",…}}` and
 *   `{"type":"error","data":{"error","code"}}` down.
 *
 * Not verified against the live APIs: the HTTP status and body Sarvam gives
 * a refused WebSocket handshake (the fake answers 403 like its REST API),
 * and the exact metadata fields of Deepgram's `Results`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { DeepgramStt } from "../../src/providers/stt/deepgram.ts";
 *
 * // The default script: speech after 200 ms of audio, the final after 1 s.
 * await using server = await FakeSttServer.start("deepgram");
 * const stt = new DeepgramStt({
 *   apiKey: server.apiKey,
 *   baseUrl: server.baseUrl,
 *   connectTimeoutMs: 1000,
 * });
 * const session = await stt.open({ sampleRate: 8000, language: "en-IN" });
 * session.push(new Uint8Array(16000)); // 1 s at 8 kHz
 * let transcript = "";
 * for await (const event of session.events()) {
 *   if (event.type === "final") {
 *     transcript = event.text;
 *     await session.close();
 *   }
 * }
 * assertEquals(transcript, HELLO_TRANSCRIPT);
 * assertEquals((await server.connection()).audioBytes, 16000);
 * ```
 *
 * @module
 */

import { decodeWav } from "../../src/audio/wav.ts";

/** What tests/fixtures/audio/hello_*.wav says. */
export const HELLO_TRANSCRIPT =
  "Hello, I would like to book an appointment for tomorrow morning.";

/** What tests/fixtures/audio/question_*.wav says. */
export const QUESTION_TRANSCRIPT = "What are your opening hours on Sunday?";

/**
 * The script of tests/fixtures/audio/hello_*.wav (any rate): speech from
 * 0.52 s, the turn over 0.3 s after it ends at 4.3 s.
 */
export const HELLO_SCRIPT: FakeSttScript = {
  turns: [{ text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 }],
};

/**
 * The script of tests/fixtures/audio/two_turns_8000.wav: hello as in
 * {@linkcode HELLO_SCRIPT}, then the question from 6.18 s to 8.28 s.
 */
export const TWO_TURNS_SCRIPT: FakeSttScript = {
  turns: [
    { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
    { text: QUESTION_TRANSCRIPT, speechStartMs: 1580, turnMs: 3980 },
  ],
};

/** The vendors faked here. */
export type SttVendor = "deepgram" | "sarvam";

/** A JSON object as received or sent. */
export type JsonMessage = Record<string, unknown>;

/** One caller turn with its own timing. */
export interface FakeSttTurn {
  /** The transcript. */
  text: string;
  /** Audio into the turn after which speech starts; default the script's. */
  speechStartMs?: number;
  /** Audio the turn lasts; default the script's. */
  turnMs?: number;
  /**
   * The language spoken, BCP 47 (default `en-IN`). Reported only when the
   * client asked the vendor to detect it: Deepgram `language=multi` gives
   * each word's `language` and the result's `languages` (primary subtags);
   * Sarvam `language-code=unknown` gives the transcript's `language_code`.
   */
  language?: string;
}

/** What the fake caller says, and when. */
export interface FakeSttScript {
  /** The caller's turns in order, default `[HELLO_TRANSCRIPT]`. */
  turns?: (string | FakeSttTurn)[];
  /** Audio into each turn after which speech starts, default 200 ms. */
  speechStartMs?: number;
  /** Audio each turn lasts; its final is sent once this much arrived, default 1000 ms. */
  turnMs?: number;
  /**
   * Deepgram only: `speech_final` (default) marks the turn's final with
   * `speech_final: true` and follows it with `UtteranceEnd`; `utterance_end`
   * sends the final without it, so only `UtteranceEnd` ends the turn.
   */
  deepgramEndpoint?: "speech_final" | "utterance_end";
  /**
   * Whether the farewell is answered (default true): Deepgram's
   * `CloseStream` with the held final, `Metadata` and a close, Sarvam's
   * `flush` with the final. False: both are recorded and ignored, as by a
   * vendor too slow to answer before the client gives up.
   */
  answersFarewell?: boolean;
}

/** How the fake answers one connection. */
export type FakeSttBehaviour =
  /** Upgrades, then transcribes per the server's script and these overrides. */
  | ({ kind: "transcribe" } & FakeSttScript)
  /** Refuses the handshake the vendor's way (401; 403 for Sarvam), whatever the key. */
  | { kind: "unauthorized" }
  /** Never answers the handshake; it stays open until the client gives up. */
  | { kind: "hang" }
  /** Upgrades and takes audio but never sends anything, nor closes on request. */
  | { kind: "silent" }
  /** Closes the socket once `afterBytes` of PCM arrived (code 1011 by default). */
  | { kind: "drop"; afterBytes: number; code?: number; reason?: string }
  /**
   * Reports a vendor error once `afterBytes` of PCM arrived: Sarvam sends
   * `{"type":"error"}`; Deepgram, which has no error message, closes with
   * 1008 `DATA-0000`.
   */
  | { kind: "error"; afterBytes: number };

/** Options of {@linkcode FakeSttServer.start}. */
export interface FakeSttServerOptions {
  /** The key clients must present, default `test-stt-key`. */
  apiKey?: string;
  /** The script of connections not otherwise scripted. */
  script?: FakeSttScript;
}

/** A handshake the fake received, accepted or not. */
export interface FakeSttRequest {
  /** Path and query as requested. */
  url: URL;
  /** The handshake's headers. */
  headers: Headers;
  /** The HTTP status answered: 101 when upgraded. */
  status: number;
}

/** One accepted WebSocket connection, as the fake saw it. */
export class FakeSttConnection {
  /** Path and query of the handshake. */
  readonly url: URL;
  /** Headers of the handshake. */
  readonly headers: Headers;
  /** Text messages received other than audio (`KeepAlive`, `CloseStream`, `flush`, …), parsed. */
  readonly messages: JsonMessage[] = [];
  /** Messages the fake sent, in order. */
  readonly sent: JsonMessage[] = [];
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #audio: Uint8Array[] = [];
  #audioBytes = 0;
  #isClosed = false;
  #listeners = new Set<() => void>();
  #markClosed!: (close: { code: number; reason: string }) => void;

  /** Records a connection made to `url` with `headers`. */
  constructor(url: URL, headers: Headers) {
    this.url = url;
    this.headers = headers;
    this.closed = new Promise((resolve) => this.#markClosed = resolve);
  }

  /** Bytes of PCM received so far (WAV headers excluded). */
  get audioBytes(): number {
    return this.#audioBytes;
  }

  /** Audio messages received so far. */
  get audioMessages(): number {
    return this.#audio.length;
  }

  /** All PCM received so far, in order. */
  get audio(): Uint8Array {
    const all = new Uint8Array(this.#audioBytes);
    let offset = 0;
    for (const piece of this.#audio) {
      all.set(piece, offset);
      offset += piece.length;
    }
    return all;
  }

  /** Whether the socket has closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /**
   * Resolves once `predicate` holds; rejects if the socket closes first.
   *
   * @example
   * ```ts
   * import { DeepgramStt } from "../../src/providers/stt/deepgram.ts";
   *
   * await using server = await FakeSttServer.start("deepgram");
   * const stt = new DeepgramStt({
   *   apiKey: server.apiKey,
   *   baseUrl: server.baseUrl,
   *   connectTimeoutMs: 1000,
   *   keepAliveMs: 10,
   * });
   * const session = await stt.open({ sampleRate: 8000, language: "en-IN" });
   * const connection = await server.connection();
   * // No audio: the adapter keeps the idle stream open.
   * await connection.until((c) => c.messages.some((m) => m.type === "KeepAlive"));
   * await session.close();
   * ```
   */
  until(predicate: (connection: FakeSttConnection) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(this)) {
          this.#listeners.delete(check);
          resolve();
        } else if (this.#isClosed) {
          this.#listeners.delete(check);
          reject(
            new Error("Fake STT connection closed before the condition held"),
          );
        }
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Adds received PCM. */
  addAudio(pcm: Uint8Array): void {
    this.#audio.push(pcm);
    this.#audioBytes += pcm.length;
    this.notify();
  }

  /** Marks the socket closed. */
  markClosed(code: number, reason: string): void {
    this.#isClosed = true;
    this.#markClosed({ code, reason });
    this.notify();
  }

  /** Re-checks every {@linkcode FakeSttConnection.until} waiting. */
  notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/**
 * A fake streaming STT vendor on 127.0.0.1. Start one per test with
 * {@linkcode FakeSttServer.start} and close it (or `await using` it).
 */
export class FakeSttServer implements AsyncDisposable {
  /** The vendor this server fakes. */
  readonly vendor: SttVendor;
  /** The key clients must present. */
  readonly apiKey: string;
  /** Every handshake received, in order. */
  readonly requests: FakeSttRequest[] = [];
  /** Every accepted connection, in order. */
  readonly connections: FakeSttConnection[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #script: FakeSttScript;
  #behaviours: FakeSttBehaviour[] = [];
  #hanging: (() => void)[] = [];
  #gate: Promise<void> | undefined;
  #release: (() => void) | undefined;
  #connectionWaiters: (() => void)[] = [];

  private constructor(
    vendor: SttVendor,
    options: FakeSttServerOptions,
  ) {
    this.vendor = vendor;
    this.apiKey = options.apiKey ?? "test-stt-key";
    this.#script = options.script ?? {};
    withDefaults(this.#script); // throws now rather than per connection
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
  }

  /** Starts a fake `vendor` on a free port. */
  static start(
    vendor: SttVendor,
    options: FakeSttServerOptions = {},
  ): Promise<FakeSttServer> {
    return Promise.resolve(new FakeSttServer(vendor, options));
  }

  /** `ws://127.0.0.1:PORT`, the adapters' `baseUrl`. */
  get baseUrl(): string {
    return `ws://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Makes the next connections behave as given, one behaviour each, in order. */
  script(...behaviours: FakeSttBehaviour[]): void {
    this.#behaviours.push(...behaviours);
  }

  /**
   * Holds every handshake until the returned function is called, so a test
   * can act while the client is still connecting.
   */
  holdHandshakes(): () => void {
    let open!: () => void;
    this.#gate = new Promise((resolve) => open = resolve);
    const release = () => {
      this.#gate = undefined;
      this.#release = undefined;
      open();
    };
    this.#release = release;
    return release;
  }

  /** Resolves with the `index`-th accepted connection once it exists. */
  async connection(index = 0): Promise<FakeSttConnection> {
    while (this.connections.length <= index) {
      await new Promise<void>((resolve) =>
        this.#connectionWaiters.push(resolve)
      );
    }
    return this.connections[index];
  }

  /** Answers hanging handshakes, closes open sockets and stops listening. */
  async close(): Promise<void> {
    this.#release?.();
    for (const answer of this.#hanging.splice(0)) answer();
    await this.#server.shutdown();
  }

  /** Same as {@linkcode FakeSttServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    // The request's own headers are gone once the handshake is answered.
    const headers = new Headers(request.headers);
    const record = (response: Response): Response => {
      this.requests.push({ url, headers, status: response.status });
      return response;
    };
    if (this.#gate) await this.#gate;
    const wire = this.vendor === "deepgram" ? deepgramWire : sarvamWire;
    if (url.pathname !== wire.path) {
      return record(Response.json({ error: "Not found" }, { status: 404 }));
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return record(
        Response.json({ error: "Expected a WebSocket upgrade" }, {
          status: 426,
        }),
      );
    }
    const behaviour = this.#behaviours.shift() ?? { kind: "transcribe" };
    const auth = wire.authorize(request, this.apiKey);
    if (!auth.ok || behaviour.kind === "unauthorized") {
      return record(wire.unauthorized());
    }
    const problem = wire.validate(url.searchParams);
    if (problem) return record(wire.badRequest(problem));
    if (behaviour.kind === "hang") {
      await new Promise<void>((resolve) => this.#hanging.push(resolve));
      return record(
        Response.json({ error: "Server closing" }, { status: 503 }),
      );
    }
    const { socket, response } = Deno.upgradeWebSocket(
      request,
      auth.protocol ? { protocol: auth.protocol } : {},
    );
    const connection = new FakeSttConnection(url, headers);
    const script = withDefaults(
      behaviour.kind === "transcribe"
        ? { ...this.#script, ...definedOnly(behaviour) }
        : this.#script,
    );
    const stream = new FakeStream(this.vendor, {
      socket,
      connection,
      behaviour,
      script,
    });
    socket.onmessage = (event) => stream.receive(event.data);
    socket.onclose = (event) => connection.markClosed(event.code, event.reason);
    this.connections.push(connection);
    for (const wake of this.#connectionWaiters.splice(0)) wake();
    return record(response);
  }
}

/** The handshake rules of one vendor. */
interface Wire {
  path: string;
  authorize(
    request: Request,
    apiKey: string,
  ): { ok: boolean; protocol?: string };
  unauthorized(): Response;
  validate(query: URLSearchParams): string | undefined;
  badRequest(problem: string): Response;
}

const deepgramWire: Wire = {
  path: "/v1/listen",
  authorize(request, apiKey) {
    if (request.headers.get("authorization") === `Token ${apiKey}`) {
      return { ok: true };
    }
    const protocols = subprotocols(request);
    // Browsers cannot set headers, so Deepgram also takes ["token", key].
    if (protocols[0] === "token" && protocols[1] === apiKey) {
      return { ok: true, protocol: "token" };
    }
    return { ok: false };
  },
  unauthorized() {
    return Response.json({
      err_code: "INVALID_AUTH",
      err_msg: "Invalid credentials.",
      request_id: crypto.randomUUID(),
    }, { status: 401, headers: { "dg-error": "Invalid credentials." } });
  },
  validate(query) {
    const problems = [
      query.get("encoding") === "linear16"
        ? ""
        : `encoding "${query.get("encoding")}"`,
      positiveInteger(query.get("sample_rate"))
        ? ""
        : `sample_rate "${query.get("sample_rate")}"`,
      oneOf(query.get("channels"), ["1"])
        ? ""
        : `channels "${query.get("channels")}"`,
      query.get("model") ? "" : "missing model",
      oneOf(query.get("interim_results"), BOOLEANS) ? "" : "interim_results",
      oneOf(query.get("vad_events"), BOOLEANS) ? "" : "vad_events",
      oneOf(query.get("smart_format"), BOOLEANS) ? "" : "smart_format",
      optionalInteger(query.get("endpointing"), ["false"]) ? "" : "endpointing",
      optionalInteger(query.get("utterance_end_ms")) ? "" : "utterance_end_ms",
      // Deepgram finds utterance ends in interim results, so it needs them.
      query.has("utterance_end_ms") && query.get("interim_results") !== "true"
        ? "utterance_end_ms without interim_results=true"
        : "",
    ].filter(Boolean);
    return problems.length
      ? `Invalid query: ${problems.join(", ")}`
      : undefined;
  },
  badRequest(problem) {
    return Response.json({
      err_code: "Bad Request",
      err_msg: problem,
      request_id: crypto.randomUUID(),
    }, { status: 400, headers: { "dg-error": problem } });
  },
};

const SARVAM_LANGUAGE = /^([a-z]{2,3}-IN|unknown)$/;
const SARVAM_MODES = [
  "transcribe",
  "translate",
  "verbatim",
  "translit",
  "codemix",
];
const SARVAM_CODECS = ["wav", "pcm_s16le", "pcm_l16", "pcm_raw"];

const sarvamWire: Wire = {
  path: "/speech-to-text/ws",
  authorize(request, apiKey) {
    if (request.headers.get("api-subscription-key") === apiKey) {
      return { ok: true };
    }
    const protocol = `api-subscription-key.${apiKey}`;
    if (subprotocols(request).includes(protocol)) return { ok: true, protocol };
    return { ok: false };
  },
  unauthorized() {
    return Response.json({
      error: {
        message: "Invalid API subscription key",
        code: "invalid_api_key_error",
      },
    }, { status: 403 });
  },
  validate(query) {
    const model = query.get("model") ?? "saaras:v3";
    const problems = [
      SARVAM_LANGUAGE.test(query.get("language-code") ?? "")
        ? ""
        : `language-code "${query.get("language-code")}"`,
      /^(saarika|saaras):v[0-9.]+$/.test(model) ? "" : `model "${model}"`,
      oneOf(query.get("mode"), SARVAM_MODES)
        ? ""
        : `mode "${query.get("mode")}"`,
      query.has("mode") && model.startsWith("saarika:")
        ? `mode with model "${model}"`
        : "",
      oneOf(query.get("sample_rate"), ["8000", "16000"])
        ? ""
        : `sample_rate "${query.get("sample_rate")}"`,
      oneOf(query.get("input_audio_codec"), SARVAM_CODECS)
        ? ""
        : `input_audio_codec "${query.get("input_audio_codec")}"`,
      oneOf(query.get("vad_signals"), BOOLEANS) ? "" : "vad_signals",
      oneOf(query.get("flush_signal"), BOOLEANS) ? "" : "flush_signal",
      oneOf(query.get("high_vad_sensitivity"), BOOLEANS)
        ? ""
        : "high_vad_sensitivity",
    ].filter(Boolean);
    return problems.length
      ? `Invalid query: ${problems.join(", ")}`
      : undefined;
  },
  badRequest(problem) {
    return Response.json(
      { error: { message: problem, code: "invalid_request_error" } },
      { status: 400 },
    );
  },
};

/** What the script says happens next. */
type Step =
  | { kind: "speech_started"; atMs: number }
  | { kind: "partial"; text: string; atMs: number }
  | {
    kind: "final";
    text: string;
    language: string;
    atMs: number;
    flushed: boolean;
  };

/** Turns received audio into the script's steps. */
class TurnScript {
  #script: ResolvedScript;
  #bytesPerMs: number;
  #turn = 0;
  #turnStartMs = 0;
  #receivedMs = 0;
  #started = false;
  #partialSent = false;

  constructor(script: ResolvedScript, sampleRate: number) {
    this.#script = script;
    this.#bytesPerMs = sampleRate * 2 / 1000;
  }

  /** The steps `bytes` more of audio trigger. */
  advance(bytes: number): Step[] {
    this.#receivedMs += bytes / this.#bytesPerMs;
    const turns = this.#script.turns;
    const steps: Step[] = [];
    while (this.#turn < turns.length) {
      const { text, speechStartMs, turnMs } = turns[this.#turn];
      const intoTurn = this.#receivedMs - this.#turnStartMs;
      const words = text.split(" ");
      if (!this.#started && intoTurn >= speechStartMs) {
        this.#started = true;
        steps.push({
          kind: "speech_started",
          atMs: this.#turnStartMs + speechStartMs,
        });
      } else if (
        this.#started && !this.#partialSent && words.length > 1 &&
        intoTurn >= (speechStartMs + turnMs) / 2
      ) {
        this.#partialSent = true;
        steps.push({
          kind: "partial",
          text: words.slice(0, Math.ceil(words.length / 2)).join(" "),
          atMs: this.#receivedMs,
        });
      } else if (intoTurn >= turnMs) {
        steps.push(this.#final(this.#turnStartMs + turnMs, false));
      } else {
        break;
      }
    }
    return steps;
  }

  /** The final of the turn in progress, when speech has started in it. */
  flush(): Step[] {
    if (this.#turn >= this.#script.turns.length || !this.#started) return [];
    return [this.#final(this.#receivedMs, true)];
  }

  #final(atMs: number, flushed: boolean): Step {
    const step: Step = {
      kind: "final",
      text: this.#script.turns[this.#turn].text,
      language: this.#script.turns[this.#turn].language,
      atMs,
      flushed,
    };
    this.#turn += 1;
    this.#turnStartMs = atMs;
    this.#started = false;
    this.#partialSent = false;
    return step;
  }
}

/** Options of a {@linkcode FakeStream}. */
interface FakeStreamOptions {
  socket: WebSocket;
  connection: FakeSttConnection;
  behaviour: FakeSttBehaviour;
  script: ResolvedScript;
}

/** The server side of one connection: takes frames, answers per script. */
class FakeStream {
  #vendor: SttVendor;
  #socket: WebSocket;
  #connection: FakeSttConnection;
  #behaviour: FakeSttBehaviour;
  #script: TurnScript;
  #endpoint: ResolvedScript["deepgramEndpoint"];
  #answersFarewell: boolean;
  #query: URLSearchParams;
  #sampleRate: number;
  #requestId = crypto.randomUUID();
  #failed = false;

  constructor(vendor: SttVendor, options: FakeStreamOptions) {
    this.#vendor = vendor;
    this.#socket = options.socket;
    this.#connection = options.connection;
    this.#behaviour = options.behaviour;
    this.#query = options.connection.url.searchParams;
    this.#sampleRate = Number(this.#query.get("sample_rate") ?? 16000);
    this.#script = new TurnScript(options.script, this.#sampleRate);
    this.#endpoint = options.script.deepgramEndpoint;
    this.#answersFarewell = options.script.answersFarewell;
  }

  /** Handles one frame from the client. */
  receive(data: unknown): void {
    if (this.#failed) return;
    if (data instanceof ArrayBuffer) {
      if (this.#vendor === "deepgram") this.#audio(new Uint8Array(data));
      else {this.#sarvamError(
          "Binary frames are not supported: send JSON audio messages",
        );}
      return;
    }
    if (typeof data !== "string") return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      message = undefined;
    }
    if (
      typeof message !== "object" || message === null || Array.isArray(message)
    ) {
      if (this.#vendor === "sarvam") {
        this.#sarvamError("Message is not a JSON object");
      }
      return;
    }
    const json = message as JsonMessage;
    if (this.#vendor === "deepgram") this.#deepgramControl(json);
    else this.#sarvamMessage(json);
  }

  #audio(pcm: Uint8Array): void {
    this.#connection.addAudio(pcm);
    const behaviour = this.#behaviour;
    if (
      behaviour.kind === "drop" &&
      this.#connection.audioBytes >= behaviour.afterBytes
    ) {
      this.#failed = true;
      this.#socket.close(
        behaviour.code ?? 1011,
        behaviour.reason ??
          (this.#vendor === "deepgram"
            ? "NET-0000: The service has not transmitted a Text frame to the client within the timeout window."
            : "Internal server error"),
      );
      return;
    }
    if (
      behaviour.kind === "error" &&
      this.#connection.audioBytes >= behaviour.afterBytes
    ) {
      this.#failed = true;
      if (this.#vendor === "deepgram") {
        this.#socket.close(
          1008,
          "DATA-0000: The payload cannot be decoded as audio. It is either not audio data or is a codec unsupported by Deepgram.",
        );
      } else {
        this.#send({
          type: "error",
          data: {
            error: "Audio could not be processed",
            code: "audio_processing_error",
          },
        });
      }
      return;
    }
    if (behaviour.kind !== "transcribe") return;
    this.#render(this.#script.advance(pcm.length));
  }

  #deepgramControl(message: JsonMessage): void {
    this.#connection.messages.push(message);
    this.#connection.notify();
    if (this.#behaviour.kind !== "transcribe") return;
    if (message.type === "Finalize") {
      this.#render(this.#script.flush());
    } else if (message.type === "CloseStream" && this.#answersFarewell) {
      this.#render(this.#script.flush());
      this.#send({
        type: "Metadata",
        transaction_key: "deprecated",
        request_id: this.#requestId,
        sha256: "0".repeat(64),
        created: new Date().toISOString(),
        duration: this.#connection.audioBytes / (this.#sampleRate * 2),
        channels: 1,
      });
      this.#socket.close(1000);
    }
  }

  #sarvamMessage(message: JsonMessage): void {
    const audio = message.audio;
    if (typeof audio !== "object" || audio === null || Array.isArray(audio)) {
      this.#connection.messages.push(message);
      this.#connection.notify();
      if (message.type !== "flush") {
        this.#sarvamError(`Unknown message type "${String(message.type)}"`);
      } else if (
        this.#behaviour.kind === "transcribe" &&
        this.#query.get("flush_signal") === "true" && this.#answersFarewell
      ) {
        this.#render(this.#script.flush());
      }
      return;
    }
    const { data, sample_rate: rate, encoding } = audio as JsonMessage;
    if (encoding !== "audio/wav") {
      this.#sarvamError(
        `Unsupported encoding "${String(encoding)}": expected "audio/wav"`,
      );
      return;
    }
    if (rate !== this.#sampleRate) {
      this.#sarvamError(
        `sample_rate "${String(rate)}" does not match the connection's`,
      );
      return;
    }
    let pcm: Uint8Array;
    try {
      const wav = decodeWav(Uint8Array.fromBase64(String(data)));
      if (wav.sampleRate !== this.#sampleRate) {
        throw new Error("WAV sample rate mismatch");
      }
      pcm = wav.pcm;
    } catch {
      this.#sarvamError(
        "Audio data is not base64 WAV at the connection's sample rate",
      );
      return;
    }
    this.#audio(pcm);
  }

  #render(steps: Step[]): void {
    for (const step of steps) {
      if (this.#vendor === "deepgram") this.#renderDeepgram(step);
      else this.#renderSarvam(step);
    }
  }

  #renderDeepgram(step: Step): void {
    const seconds = step.atMs / 1000;
    if (step.kind === "speech_started") {
      if (this.#query.get("vad_events") === "true") {
        this.#send({
          type: "SpeechStarted",
          channel: [0, 1],
          timestamp: seconds,
        });
      }
      return;
    }
    if (step.kind === "partial") {
      if (this.#query.get("interim_results") === "true") {
        this.#send(
          this.#results(step.text, {
            isFinal: false,
            speechFinal: false,
            seconds,
          }),
        );
      }
      return;
    }
    const byEndpoint = !step.flushed &&
      this.#endpoint === "speech_final";
    this.#send(
      this.#results(step.text, {
        isFinal: true,
        speechFinal: byEndpoint,
        seconds,
        language: step.language,
      }),
    );
    if (!step.flushed && this.#query.has("utterance_end_ms")) {
      this.#send({
        type: "UtteranceEnd",
        channel: [0, 1],
        last_word_end: seconds,
      });
    }
  }

  #results(
    text: string,
    options: {
      isFinal: boolean;
      speechFinal: boolean;
      seconds: number;
      language?: string;
    },
  ): JsonMessage {
    const words = text.split(" ");
    const multi = this.#query.get("language") === "multi" &&
      options.language !== undefined;
    const primary = options.language?.split("-")[0] ?? "en";
    const wordSeconds = 0.3;
    const start = Math.max(0, options.seconds - words.length * wordSeconds);
    return {
      type: "Results",
      channel_index: [0, 1],
      duration: options.seconds - start,
      start,
      is_final: options.isFinal,
      speech_final: options.speechFinal,
      from_finalize: false,
      channel: {
        alternatives: [{
          transcript: text,
          confidence: 0.98,
          words: words.map((word, i) => ({
            word: word.toLowerCase().replace(/[^a-z']/g, ""),
            start: start + i * wordSeconds,
            end: start + (i + 1) * wordSeconds,
            confidence: 0.98,
            punctuated_word: word,
            ...(multi ? { language: primary } : {}),
          })),
          ...(multi ? { languages: [primary] } : {}),
        }],
      },
      metadata: {
        request_id: this.#requestId,
        model_info: { name: "general-nova-3", version: "fake", arch: "nova-3" },
        model_uuid: "00000000-0000-0000-0000-000000000000",
      },
    };
  }

  #renderSarvam(step: Step): void {
    const vadSignals = this.#query.get("vad_signals") === "true";
    const occuredAt = Date.now() / 1000;
    if (step.kind === "speech_started") {
      if (vadSignals) {
        this.#send({
          type: "events",
          data: { signal_type: "START_SPEECH", occured_at: occuredAt },
        });
      }
      return;
    }
    // Sarvam's /speech-to-text/ws sends no interim transcripts.
    if (step.kind === "partial") return;
    if (vadSignals && !step.flushed) {
      this.#send({
        type: "events",
        data: { signal_type: "END_SPEECH", occured_at: occuredAt },
      });
    }
    this.#send({
      type: "data",
      data: {
        request_id: this.#requestId,
        transcript: step.text,
        timestamps: null,
        diarized_transcript: null,
        language_code: this.#query.get("language-code") === "unknown"
          ? (step.kind === "final" ? step.language : null)
          : this.#query.get("language-code"),
        metrics: { audio_duration: step.atMs / 1000, processing_latency: 0.05 },
      },
    });
  }

  #sarvamError(message: string): void {
    this.#send({
      type: "error",
      data: { error: message, code: "invalid_request_error" },
    });
  }

  #send(message: JsonMessage): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return;
    this.#socket.send(JSON.stringify(message));
    this.#connection.sent.push(message);
    this.#connection.notify();
  }
}

const BOOLEANS = ["true", "false"];

/** A script with every default applied. */
interface ResolvedScript {
  turns: Required<FakeSttTurn>[];
  deepgramEndpoint: "speech_final" | "utterance_end";
  answersFarewell: boolean;
}

function withDefaults(script: FakeSttScript): ResolvedScript {
  const speechStartMs = script.speechStartMs ?? 200;
  const turnMs = script.turnMs ?? 1000;
  const turns = (script.turns ?? [HELLO_TRANSCRIPT]).map((turn) => {
    const resolved = typeof turn === "string"
      ? { text: turn, speechStartMs, turnMs, language: "en-IN" }
      : {
        text: turn.text,
        language: turn.language ?? "en-IN",
        speechStartMs: turn.speechStartMs ?? speechStartMs,
        turnMs: turn.turnMs ?? turnMs,
      };
    if (resolved.speechStartMs >= resolved.turnMs) {
      throw new RangeError(
        `Invalid speechStartMs "${resolved.speechStartMs}": expected less than turnMs "${resolved.turnMs}"`,
      );
    }
    return resolved;
  });
  return {
    turns,
    deepgramEndpoint: script.deepgramEndpoint ?? "speech_final",
    answersFarewell: script.answersFarewell ?? true,
  };
}

function definedOnly(script: FakeSttScript): FakeSttScript {
  return Object.fromEntries(
    Object.entries(script).filter(([key, value]) =>
      key !== "kind" && value !== undefined
    ),
  );
}

function subprotocols(request: Request): string[] {
  return (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((protocol) => protocol.trim()).filter(Boolean);
}

function oneOf(value: string | null, allowed: string[]): boolean {
  return value === null || allowed.includes(value);
}

function positiveInteger(value: string | null): boolean {
  return value !== null && /^[1-9][0-9]*$/.test(value);
}

function optionalInteger(value: string | null, also: string[] = []): boolean {
  return value === null || also.includes(value) || positiveInteger(value);
}
