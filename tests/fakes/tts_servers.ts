/**
 * Fake Deepgram, ElevenLabs and Sarvam text-to-speech servers on 127.0.0.1
 * that speak each vendor's wire format, so the real adapters run against
 * them in tests and benchmarks.
 *
 * Each server checks what the real API checks (path, method, auth header,
 * query parameters, body fields) and answers a bad request with the
 * vendor's own error JSON. A good request gets {@linkcode fakeSpeech}: a
 * deterministic sine whose length follows the text, streamed in several
 * pieces. {@linkcode FakeTtsServer.script} makes the next requests fail in
 * the ways real vendors do. Every request is recorded.
 *
 * Wire formats (from the vendors' API references):
 *
 * - Deepgram: `POST /v1/speak?model&encoding=linear16&sample_rate&container=none`,
 *   `Authorization: Token <key>`, body `{"text"}`; errors
 *   `{"err_code", "err_msg", "request_id"}`, 401 `INVALID_AUTH`.
 * - ElevenLabs: `POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>`,
 *   `xi-api-key`, body `{"text", "model_id"?, "voice_settings"?, "language_code"?}`;
 *   401 `{"detail": {"status": "invalid_api_key", "message"}}`, validation
 *   errors `{"detail": [{"type", "loc", "msg", "input"}]}`.
 * - Sarvam: `POST /text-to-speech/stream` (binary audio) and
 *   `POST /text-to-speech` (`{"request_id", "audios": [base64 WAV]}`),
 *   `api-subscription-key`, body `{"text", "target_language_code", "speaker",
 *   "model", "speech_sample_rate", "output_audio_codec", …}`; errors
 *   `{"error": {"message", "code"}}`, auth failures are 403
 *   `invalid_api_key_error`.
 *
 * Not verified against the live APIs: the `content-type` of audio answers
 * (the fakes send `application/octet-stream`) and the `error.code` strings of
 * Deepgram's 400/500 answers.
 *
 * @example
 * ```ts
 * import { assertEquals, assertRejects } from "@std/assert";
 * import { DeepgramTts } from "../../src/providers/tts/deepgram.ts";
 * import { ProviderError } from "../../src/providers/provider_error.ts";
 *
 * await using server = await FakeTtsServer.start("deepgram");
 * const tts = new DeepgramTts({
 *   apiKey: server.apiKey,
 *   voice: "aura-2-thalia-en",
 *   baseUrl: server.baseUrl,
 *   timeoutMs: 1000,
 * });
 * const { audio } = await tts.synthesize("Hello!", { sampleRate: 8000 });
 * const pcm = (await Array.fromAsync(audio)).reduce((sum, piece) => sum + piece.length, 0);
 * assertEquals(pcm, fakeSpeech("Hello!", 8000).length);
 *
 * server.script({ kind: "unauthorized" }); // the next request gets a 401
 * await assertRejects(() => tts.synthesize("Hello!", { sampleRate: 8000 }), ProviderError);
 * ```
 *
 * @module
 */

import { encodeWav } from "../../src/audio/wav.ts";

/** The vendors faked here. */
export type TtsVendor = "deepgram" | "elevenlabs" | "sarvam";

/** How the fake answers one request. */
export type FakeTtsBehaviour =
  /** Speaks: the request is validated, then audio is sent in pieces. */
  | {
    kind: "speak";
    /** How many pieces the audio is cut into (default: the server's). */
    pieces?: number;
    /** Cuts pieces at odd byte offsets, mid-sample. */
    oddCuts?: boolean;
    /** Pause before every piece but the first, in ms (default: the server's). */
    delayMs?: number;
    /** Sarvam stream only: sends a WAV header before the PCM. */
    wavHeader?: boolean;
  }
  /** Fails auth the vendor's way (401; 403 for Sarvam), whatever the key. */
  | { kind: "unauthorized" }
  /** Answers 500 with the vendor's error JSON. */
  | { kind: "server_error" }
  /** Answers `status` with `body` as JSON. */
  | { kind: "reply"; status: number; body: unknown }
  /** Never answers; the request stays open until the client gives up. */
  | { kind: "hang" }
  /** Sends headers and the first `afterBytes` of audio, then nothing more. */
  | { kind: "stall"; afterBytes: number }
  /** Sends the first `afterBytes` of audio, then drops the connection. */
  | { kind: "disconnect"; afterBytes: number };

/** A request the fake received. */
export interface RecordedTtsRequest {
  /** HTTP method. */
  method: string;
  /** URL path, e.g. `/v1/speak`. */
  path: string;
  /** Query parameters. */
  query: Record<string, string>;
  /** Headers, names lowercase. */
  headers: Record<string, string>;
  /** The parsed JSON body, or its text when it is not JSON. */
  body: unknown;
}

/** Options of {@linkcode FakeTtsServer.start}. */
export interface FakeTtsServerOptions {
  /** The key the fake accepts; `test-<vendor>-key` by default. */
  apiKey?: string;
  /** Default number of pieces audio is cut into; 4 by default. */
  pieces?: number;
  /** Default pause between pieces, in ms; none by default. */
  delayMs?: number;
  /** The audio spoken for a text; {@linkcode fakeSpeech} by default (real speech for echo tests). */
  speech?: (text: string, sampleRate: number) => Uint8Array;
  /** Wait before the first audio byte of every answer, in ms (a vendor's time to first byte); none by default. */
  firstByteMs?: number;
}

/** Milliseconds of fake speech per character of text. */
export const FAKE_MS_PER_CHAR = 20;

/** Rates the fake Deepgram accepts for `linear16`. */
const DEEPGRAM_RATES = [8000, 16000, 24000, 32000, 48000];
/** Rates the fake ElevenLabs accepts as `pcm_<rate>`. */
const ELEVENLABS_RATES = [8000, 16000, 22050, 24000, 44100, 48000];
/** Rates the fake Sarvam accepts. */
const SARVAM_RATES = [8000, 16000, 22050, 24000];
const SARVAM_REST_RATES = [...SARVAM_RATES, 32000, 44100, 48000];
const SARVAM_LANGUAGES = [
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
const SARVAM_MODELS = ["bulbul:v2", "bulbul:v3"];

/**
 * The PCM the fakes speak for `text` at `sampleRate`: a 440 Hz sine,
 * {@linkcode FAKE_MS_PER_CHAR} ms per character, 16-bit little-endian mono.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // 2 characters × 20 ms × 8 samples per ms × 2 bytes
 * assertEquals(fakeSpeech("hi", 8000).length, 640);
 * ```
 */
export function fakeSpeech(text: string, sampleRate: number): Uint8Array {
  const samples = Math.round(sampleRate * FAKE_MS_PER_CHAR / 1000) *
    Math.max(1, [...text].length);
  const pcm = new Uint8Array(samples * 2);
  const view = new DataView(pcm.buffer);
  for (let i = 0; i < samples; i++) {
    const value = Math.round(
      8000 * Math.sin(2 * Math.PI * 440 * i / sampleRate),
    );
    view.setInt16(i * 2, value, true);
  }
  return pcm;
}

/** A fake vendor's error answer. */
class Rejection {
  constructor(readonly status: number, readonly body: unknown) {}
}

/** What a validated request asks for. */
interface Speech {
  text: string;
  sampleRate: number;
  /** Sarvam REST: answer JSON with base64 WAV. */
  json?: boolean;
}

/** A fake text-to-speech vendor, listening on 127.0.0.1. */
export class FakeTtsServer implements AsyncDisposable {
  /** The vendor it fakes. */
  readonly vendor: TtsVendor;
  /** The key it accepts. */
  readonly apiKey: string;
  /** Every request received, in order. */
  readonly requests: RecordedTtsRequest[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #closing = new AbortController();
  readonly #script: FakeTtsBehaviour[] = [];
  readonly #pieces: number;
  readonly #delayMs: number;
  readonly #speech: (text: string, sampleRate: number) => Uint8Array;
  readonly #firstByteMs: number;
  #requestIds = 0;

  private constructor(vendor: TtsVendor, options: FakeTtsServerOptions) {
    this.vendor = vendor;
    this.apiKey = options.apiKey ?? `test-${vendor}-key`;
    this.#pieces = options.pieces ?? 4;
    this.#delayMs = options.delayMs ?? 0;
    this.#speech = options.speech ?? fakeSpeech;
    this.#firstByteMs = options.firstByteMs ?? 0;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
  }

  /** Starts a fake `vendor` on a free port. */
  static start(
    vendor: TtsVendor,
    options: FakeTtsServerOptions = {},
  ): Promise<FakeTtsServer> {
    return Promise.resolve(new FakeTtsServer(vendor, options));
  }

  /** The URL to give an adapter as `baseUrl`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** The text each request asked to be spoken, in order. */
  texts(): string[] {
    return this.requests.map((request) =>
      String((request.body as { text?: unknown }).text)
    );
  }

  /** Queues how the next requests are answered, in order; then they speak. */
  script(...behaviours: FakeTtsBehaviour[]): void {
    this.#script.push(...behaviours);
  }

  /** Releases hung and stalled requests, then stops listening. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#server.shutdown();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const recorded = await record(request);
    this.requests.push(recorded);
    const behaviour = this.#script.shift() ?? { kind: "speak" };
    if (behaviour.kind === "hang") {
      // Held until close(): request.signal would also see the client leave,
      // but Deno warns about its legacy semantics on every use.
      await settled(this.#closing.signal);
      return new Response(null, { status: 504 });
    }
    if (behaviour.kind === "reply") {
      return Response.json(behaviour.body, { status: behaviour.status });
    }
    if (behaviour.kind === "unauthorized") return this.#json(this.#authError());
    if (behaviour.kind === "server_error") {
      return this.#json(this.#serverError());
    }
    let speech: Speech;
    try {
      speech = this.#validate(recorded);
    } catch (error) {
      if (error instanceof Rejection) return this.#json(error);
      throw error;
    }
    const pcm = this.#speech(speech.text, speech.sampleRate);
    if (speech.json) {
      const wav = encodeWav({ sampleRate: speech.sampleRate, pcm });
      return Response.json({
        request_id: this.#requestId(),
        audios: [wav.toBase64()],
      });
    }
    return this.#audio(pcm, speech.sampleRate, behaviour);
  }

  #audio(
    pcm: Uint8Array,
    sampleRate: number,
    behaviour: FakeTtsBehaviour,
  ): Response {
    let bytes = pcm;
    let pieces = this.#pieces;
    let oddCuts = false;
    let delayMs = this.#delayMs;
    let stall = false;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
    };
    if (behaviour.kind === "speak") {
      pieces = behaviour.pieces ?? pieces;
      oddCuts = behaviour.oddCuts ?? false;
      delayMs = behaviour.delayMs ?? delayMs;
      if (behaviour.wavHeader === true) {
        // A streaming WAV header declares the largest data size, as the
        // length is unknown when it is sent.
        bytes = encodeWav({ sampleRate, pcm });
        new DataView(bytes.buffer).setUint32(40, 0xffffffff, true);
      }
    } else if (behaviour.kind === "stall") {
      bytes = pcm.subarray(0, behaviour.afterBytes);
      pieces = 1;
      stall = true;
    } else if (behaviour.kind === "disconnect") {
      // Promising the whole audio and closing early drops the connection
      // mid-body, as a vendor crash does (an errored body stream would too,
      // but Deno logs its stack trace).
      headers["content-length"] = String(pcm.length);
      bytes = pcm.subarray(0, behaviour.afterBytes);
      pieces = 1;
    }
    const body = pieceStream(cut(bytes, pieces, oddCuts), {
      firstByteMs: this.#firstByteMs,
      delayMs,
      stall,
      release: this.#closing.signal,
    });
    return new Response(body, { headers });
  }

  #validate(request: RecordedTtsRequest): Speech {
    if (request.method !== "POST") {
      throw new Rejection(405, this.#errorBody(405, "Method Not Allowed"));
    }
    switch (this.vendor) {
      case "deepgram":
        return this.#validateDeepgram(request);
      case "elevenlabs":
        return this.#validateElevenLabs(request);
      case "sarvam":
        return this.#validateSarvam(request);
    }
  }

  #validateDeepgram(request: RecordedTtsRequest): Speech {
    if (request.path !== "/v1/speak") throw this.#notFound(request.path);
    if (request.headers["authorization"] !== `Token ${this.apiKey}`) {
      throw this.#authError();
    }
    const { model, encoding, sample_rate, container } = request.query;
    const bad = (message: string) =>
      new Rejection(400, this.#errorBody(400, message));
    if (!model) throw bad("No model given.");
    if (encoding !== "linear16") {
      throw bad(`The fake only speaks linear16, not "${encoding}".`);
    }
    if (container !== "none") {
      throw bad(`The fake only sends raw audio, not container "${container}".`);
    }
    const sampleRate = Number(sample_rate);
    if (!DEEPGRAM_RATES.includes(sampleRate)) {
      throw bad(`Unsupported sample_rate "${sample_rate}" for linear16.`);
    }
    const text = textField(request.body, "text");
    if (text === undefined) throw bad("Missing text in the JSON body.");
    return { text, sampleRate };
  }

  #validateElevenLabs(request: RecordedTtsRequest): Speech {
    const match = request.path.match(/^\/v1\/text-to-speech\/([^/]+)\/stream$/);
    if (match === null) throw this.#notFound(request.path);
    if (request.headers["xi-api-key"] !== this.apiKey) throw this.#authError();
    const format = request.query["output_format"] ?? "";
    const rate = Number(format.match(/^pcm_(\d+)$/)?.[1]);
    if (!ELEVENLABS_RATES.includes(rate)) {
      throw this.#validationError(
        ["query", "output_format"],
        `The fake only speaks pcm_<rate>, not "${format}"`,
        format,
      );
    }
    const body = request.body as Record<string, unknown> | null;
    const text = textField(body, "text");
    if (text === undefined) {
      throw this.#validationError(["body", "text"], "Field required", body);
    }
    for (const key of ["model_id", "language_code"]) {
      if (body?.[key] !== undefined && typeof body[key] !== "string") {
        throw this.#validationError(
          ["body", key],
          "Input should be a valid string",
          body[key],
        );
      }
    }
    const settings = body?.["voice_settings"];
    if (
      settings !== undefined &&
      (typeof settings !== "object" || settings === null)
    ) {
      throw this.#validationError(
        ["body", "voice_settings"],
        "Input should be a valid dictionary",
        settings,
      );
    }
    return { text, sampleRate: rate };
  }

  #validateSarvam(request: RecordedTtsRequest): Speech {
    const stream = request.path === "/text-to-speech/stream";
    if (!stream && request.path !== "/text-to-speech") {
      throw this.#notFound(request.path);
    }
    if (request.headers["api-subscription-key"] !== this.apiKey) {
      throw this.#authError();
    }
    const body = request.body as Record<string, unknown> | null;
    const bad = (message: string) =>
      new Rejection(400, this.#errorBody(400, message));
    const text = textField(body, "text");
    const maxChars = stream ? 3500 : 2500;
    if (text === undefined || text.length > maxChars) {
      throw bad(`text must be 1 to ${maxChars} characters`);
    }
    const language = body?.["target_language_code"];
    if (
      (language !== undefined || !stream) &&
      !SARVAM_LANGUAGES.includes(String(language))
    ) {
      throw bad(`Unsupported target_language_code "${language}"`);
    }
    const model = body?.["model"] ?? "bulbul:v2";
    if (!SARVAM_MODELS.includes(String(model))) {
      throw bad(`Unsupported model "${model}"`);
    }
    if (
      body?.["speaker"] !== undefined && typeof body["speaker"] !== "string"
    ) {
      throw bad("speaker must be a string");
    }
    // The docs list the rates as an enum without saying number or string.
    const sampleRate = Number(body?.["speech_sample_rate"] ?? 22050);
    if (!(stream ? SARVAM_RATES : SARVAM_REST_RATES).includes(sampleRate)) {
      throw bad(
        `Unsupported speech_sample_rate "${body?.["speech_sample_rate"]}"`,
      );
    }
    const codec = body?.["output_audio_codec"];
    const wanted = stream ? "linear16" : "wav";
    if (codec !== undefined && codec !== wanted) {
      throw bad(`The fake only sends ${wanted} here, not "${codec}"`);
    }
    return { text, sampleRate, json: !stream };
  }

  #json(rejection: Rejection): Response {
    return Response.json(rejection.body, { status: rejection.status });
  }

  #notFound(path: string): Rejection {
    return new Rejection(404, this.#errorBody(404, `No route "${path}"`));
  }

  #authError(): Rejection {
    switch (this.vendor) {
      case "deepgram":
        return new Rejection(401, {
          err_code: "INVALID_AUTH",
          err_msg: "Invalid credentials.",
          request_id: this.#requestId(),
        });
      case "elevenlabs":
        return new Rejection(401, {
          detail: { status: "invalid_api_key", message: "Invalid API key" },
        });
      case "sarvam":
        return new Rejection(403, {
          error: {
            message: "Invalid API key. Please check your API subscription key.",
            code: "invalid_api_key_error",
          },
        });
    }
  }

  #serverError(): Rejection {
    return new Rejection(500, this.#errorBody(500, "Internal server error"));
  }

  #validationError(loc: string[], msg: string, input: unknown): Rejection {
    return new Rejection(422, {
      detail: [{ type: "value_error", loc, msg, input }],
    });
  }

  #errorBody(status: number, message: string): unknown {
    switch (this.vendor) {
      case "deepgram":
        return {
          err_code: status >= 500 ? "INTERNAL_SERVER_ERROR" : "BAD_REQUEST",
          err_msg: message,
          request_id: this.#requestId(),
        };
      case "elevenlabs":
        return {
          detail: {
            status: status >= 500 ? "internal_server_error" : "bad_request",
            message,
          },
        };
      case "sarvam":
        return {
          error: {
            message,
            code: status >= 500
              ? "internal_server_error"
              : "invalid_request_error",
          },
        };
    }
  }

  #requestId(): string {
    this.#requestIds += 1;
    return `fake-${this.vendor}-${this.#requestIds}`;
  }
}

/** A body that sends `pieces` with pauses, then ends, or stalls until released. */
function pieceStream(
  pieces: Uint8Array[],
  options: {
    firstByteMs?: number;
    delayMs: number;
    stall: boolean;
    release: AbortSignal;
  },
): ReadableStream<Uint8Array> {
  const cancelled = new AbortController();
  const release = AbortSignal.any([options.release, cancelled.signal]);
  let index = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (index < pieces.length) {
        const wait = index === 0 ? options.firstByteMs ?? 0 : options.delayMs;
        if (wait > 0) await sleep(wait, release);
        if (cancelled.signal.aborted) return;
        controller.enqueue(pieces[index++]);
        return;
      }
      if (options.stall) await settled(release);
      if (!cancelled.signal.aborted) controller.close();
    },
    cancel() {
      cancelled.abort();
    },
  }, { highWaterMark: 0 });
}

/** Cuts `bytes` into `count` pieces, at odd offsets when `odd`. */
function cut(bytes: Uint8Array, count: number, odd: boolean): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (let i = 1; i < count; i++) {
    let end = Math.floor(bytes.length * i / count);
    if (odd && end % 2 === 0) end += 1;
    end = Math.min(end, bytes.length);
    if (end > start) pieces.push(bytes.subarray(start, end));
    start = Math.max(start, end);
  }
  if (start < bytes.length) pieces.push(bytes.subarray(start));
  return pieces;
}

async function record(request: Request): Promise<RecordedTtsRequest> {
  const url = new URL(request.url);
  const text = await request.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text so a test can see what was sent.
  }
  return {
    method: request.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(request.headers),
    body,
  };
}

function textField(body: unknown, key: string): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const value = (body as Record<string, unknown>)[key];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** Resolves when `signal` aborts. */
function settled(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/** Resolves after `ms`, or sooner when `signal` aborts; leaves no timer. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
