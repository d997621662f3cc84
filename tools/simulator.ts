/**
 * A fake Exotel: places a simulated Voicebot call to a bot over a real
 * WebSocket, speaking Exotel's wire format, and reports what the bot did.
 *
 * The caller's audio streams at a fixed cadence (silence once it runs out, as
 * Exotel does), DTMF and extra caller audio (barge-in) come at given times,
 * and the bot's audio is "played" the way Exotel plays it: queued, at real
 * time for the rate, marks echoed when playback reaches them, `clear`
 * dropping what has not started.
 *
 * One call is one async loop with one timer per frame, scheduled against the
 * call's start time (no drift), so one process can drive hundreds of calls.
 *
 * @example
 * ```ts
 * import { decodeWav } from "../src/audio/wav.ts";
 * import { simulateCall } from "./simulator.ts";
 *
 * const wav = decodeWav(await Deno.readFile("tests/fixtures/audio/hello_8000.wav"));
 * const report = await simulateCall({
 *   url: "ws://127.0.0.1:3000/voicebot/ws",
 *   pcm: wav.pcm,
 *   sampleRate: 8000,
 * });
 * report.badChunks.length; // 0 for a well-behaved bot
 * ```
 *
 * @module
 */

import {
  CHUNK_ALIGN_BYTES,
  isSampleRate,
  isValidChunkSize,
  MAX_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  type SampleRate,
} from "../src/audio/pcm.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { decodeMulaw, encodeMulaw, MULAW_SILENCE } from "../src/audio/mulaw.ts";
import { type Clock, systemClock } from "../src/call/clock.ts";
import { CallerAudio } from "./caller_audio.ts";
import { concat, ExotelPlayback } from "./exotel_playback.ts";

/** Caller audio placed at a time offset, mixed over whatever else plays then. */
export interface CallerAudioEvent {
  /** When it starts, in ms from the first caller frame. */
  atMs: number;
  /** 16-bit PCM at the call's rate; give this or `wav`. */
  pcm?: Uint8Array;
  /** A WAV file at the call's rate; give this or `pcm`. */
  wav?: Uint8Array;
}

/** A DTMF key press. */
export interface DtmfPress {
  /** When it is sent, in ms from the first caller frame. */
  atMs: number;
  /** `0`-`9`, `*`, `#` or `A`-`D`. */
  digit: string;
  /** The `dtmf.duration` Exotel reports, in ms (default 100). */
  durationMs?: number;
}

/** What a script may do to the caller side while the call runs. */
export interface CallerControl {
  /** Ms on the call's clock (virtual in fast mode). */
  readonly callMs: number;
  /** Plays `pcm` (at the call's rate) from the next frame, mixed over the rest. */
  play(pcm: Uint8Array): void;
  /** Sends a DTMF digit before the next frame. */
  dtmf(digit: string): void;
  /** Ends the call at the next frame: `stop`, then close. */
  hangup(): void;
}

/** Options of {@linkcode simulateCall}. */
export interface SimulateCallOptions {
  /**
   * The bot's voicebot endpoint, `ws://` or `wss://`. `sample-rate` and
   * `call_id` are added when absent; `user:pass@` credentials become an
   * `Authorization: Basic` header, as Exotel does, unless `headers` has one.
   */
  url: string;
  /** The caller's audio: 16-bit little-endian mono PCM at `sampleRate`. */
  pcm: Uint8Array;
  /** The call's rate, sent in `?sample-rate=` and `start.media_format`. */
  sampleRate: SampleRate;
  /**
   * The wire's coding (default `"pcm"`). `"mulaw"` (8 kHz only) announces
   * `audio/x-mulaw` in `start`, sends the caller's audio as G.711 μ-law and
   * decodes the bot's: `pcm`, the report's audio and `onReplyAudio` stay
   * 16-bit PCM, while chunk rules apply to the μ-law bytes (multiples of
   * 160, 20 ms).
   */
  encoding?: SimulatedEncoding;
  /** Extra headers on the upgrade request, e.g. `Authorization`. */
  headers?: HeadersInit;
  /** Caller audio per media frame, in ms (default 100; Exotel sends 20-100). */
  frameMs?: number;
  /**
   * Send frames at real time (default true). False runs the call on a
   * virtual clock, which playback also follows, as fast as the socket takes
   * frames while there is caller audio to send or bot audio to play; once
   * both are done it streams silence at the pace of `clock`, since only the
   * bot can end that wait. The waits below are always on `clock`.
   */
  realtime?: boolean;
  /**
   * The clock pacing and the reply waits follow: the system clock by
   * default. A test passes a fake clock to step a call frame by frame and
   * see exactly when each frame goes out.
   */
  clock?: Clock;
  /** DTMF presses to send. */
  dtmf?: DtmfPress[];
  /** More caller audio at time offsets, e.g. speech over the bot for barge-in. */
  events?: CallerAudioEvent[];
  /**
   * Once the caller's audio, events and DTMF are done, keep streaming silence
   * until the bot has sent nothing for this many ms and everything it queued
   * has played (default 3000).
   */
  waitForReplyMs?: number;
  /** Give up waiting for the bot this many ms after the caller's script ended (default 60000). */
  maxWaitMs?: number;
  /** How long the WebSocket handshake may take (default 10000, Exotel's). */
  connectTimeoutMs?: number;
  /** The call's id (default: the URL's call id, else random). */
  callSid?: string;
  /** The stream's id (default: the URL's `stream_sid`, else random). */
  streamSid?: string;
  /** The account id in `start` and `stop` (default `"simulator"`). */
  accountSid?: string;
  /** The caller's number. */
  from?: string;
  /** The number called. */
  to?: string;
  /** `start.custom_parameters` (default: the URL's query parameters other than the ones Exotel defines). */
  customParameters?: Record<string, string>;
  /** Keep the received and heard PCM in the report (default true); load tests turn it off. */
  keepAudio?: boolean;
  /** Called for every media chunk the bot sends, with a handle to drive the caller. */
  onReplyAudio?: (pcm: Uint8Array, caller: CallerControl) => void;
  /** Aborting hangs up: `stop`, then close. */
  signal?: AbortSignal;
}

/** How the simulated call codes its audio on the wire. */
export type SimulatedEncoding = "pcm" | "mulaw";

/** Every μ-law chunk must be a multiple of this many bytes (20 ms at 8 kHz). */
const MULAW_CHUNK_ALIGN_BYTES = CHUNK_ALIGN_BYTES / 2;

/** Why a chunk the bot sent breaks Exotel's rules. */
export type ChunkProblem =
  | "not_multiple_of_320"
  | "not_multiple_of_160"
  | "too_small"
  | "too_large"
  | "missing_stream_sid"
  | "wrong_stream_sid"
  | "invalid_payload";

/** A media frame from the bot that breaks Exotel's rules. */
export interface BadChunk {
  /** Its position among the bot's media frames, from 0. */
  index: number;
  /** Payload size on the wire, μ-law or PCM (0 when it does not decode). */
  bytes: number;
  /** The stream id it carried. */
  streamSid?: string;
  /** Every rule it breaks. */
  problems: ChunkProblem[];
}

/** Why a non-media frame from the bot was not understood or was misaddressed. */
export type FrameProblem =
  | "binary"
  | "invalid_json"
  | "not_an_object"
  | "unknown_event"
  | "missing_field"
  | "missing_stream_sid"
  | "wrong_stream_sid";

/** A frame from the bot Exotel would not understand. */
export interface BadFrame {
  /** What is wrong. */
  problem: FrameProblem;
  /** The event name, when there was one. */
  event?: string;
  /** The start of the frame. */
  preview: string;
}

/** Frame and byte counts for one direction. */
export interface DirectionStats {
  /** Frames of any kind. */
  frames: number;
  /** `media` frames. */
  mediaFrames: number;
  /** Decoded PCM bytes in `media` frames. */
  pcmBytes: number;
  /** Characters of text frames plus bytes of binary ones. */
  frameBytes: number;
}

/** How a simulated call ended. */
export type EndReason =
  | "completed"
  | "max_wait"
  | "hangup"
  | "aborted"
  | "closed_by_bot"
  | "connect_failed";

/** Everything {@linkcode simulateCall} saw. Times are real ms unless named `call…`. */
export interface SimulationReport {
  /** The URL dialled, without credentials. */
  url: string;
  /** The call's id. */
  callSid: string;
  /** The stream's id. */
  streamSid: string;
  /** The call's rate. */
  sampleRate: SampleRate;
  /** The wire's coding. */
  encoding: SimulatedEncoding;
  /** Whether the WebSocket opened. */
  connected: boolean;
  /** The HTTP status that refused the upgrade, when one did. */
  httpStatus?: number;
  /** The first error seen: connection failure, socket error, script error. */
  error?: string;
  /** How the call ended. */
  endReason: EndReason;
  /** The close code; Deno reports 0 for a refused upgrade. */
  closeCode?: number;
  /** The close reason. */
  closeReason?: string;
  /** What the simulator sent. */
  sent: DirectionStats;
  /** What the bot sent. */
  received: DirectionStats;
  /** Media frames from the bot that break Exotel's rules. */
  badChunks: BadChunk[];
  /** Other frames from the bot that Exotel would not understand. */
  badFrames: BadFrame[];
  /** Names of the marks the bot sent, in order. */
  marksReceived: string[];
  /** Names of the marks echoed back after playback reached them, in order. */
  marksEchoed: string[];
  /** Names of the marks dropped by a `clear` before playback reached them. */
  marksDropped: string[];
  /** `clear` frames received. */
  clearsReceived: number;
  /** Digits sent, in order. */
  dtmfSent: string[];
  /** From the first caller frame sent to the first bot media frame received. */
  timeToFirstReplyMs?: number;
  /** Length of the caller's stream on the call's clock (virtual in fast mode). */
  callMs: number;
  /** Real time from opening the socket to the end. */
  wallMs: number;
  /** PCM bytes playback played. */
  heardBytes: number;
  /** PCM bytes a `clear` dropped unplayed. */
  clearedBytes: number;
  /** All PCM the bot sent, in arrival order (empty when `keepAudio` is false). */
  receivedPcm: Uint8Array;
  /** The PCM playback played, honouring clears (empty when `keepAudio` is false). */
  heardPcm: Uint8Array;
}

/** Error thrown by {@linkcode simulateCall} for options it cannot use. */
export class SimulatorOptionError extends Error {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "SimulatorOptionError";
  }
}

/** Query parameters Exotel gives meaning to; the rest become custom parameters. */
const EXOTEL_QUERY_KEYS = new Set([
  "sample-rate",
  "call_id",
  "callSid",
  "callLogId",
  "stream_sid",
]);
const CALL_ID_KEYS = ["call_id", "callSid", "callLogId"];
const DTMF_DIGIT = /^[0-9*#A-D]$/;
/** In fast mode, stop sending while this much is unsent, so the bot is not buried. */
const FAST_MAX_BUFFERED_BYTES = 1 << 20;
const CLOSE_TIMEOUT_MS = 5000;
const PREVIEW_CHARS = 120;

/**
 * Places a simulated Exotel Voicebot call and reports what the bot did.
 *
 * Resolves with a report even when the connection fails (see
 * {@linkcode SimulationReport.connected}); rejects with a
 * {@linkcode SimulatorOptionError} only for bad options, before connecting.
 */
export function simulateCall(
  options: SimulateCallOptions,
): Promise<SimulationReport> {
  try {
    return new CallSimulation(options).run();
  } catch (error) {
    return Promise.reject(error);
  }
}

interface Dialled {
  url: string;
  headers: Headers;
  urlCallId?: string;
  urlStreamSid?: string;
  customParameters: Record<string, string>;
}

class CallSimulation {
  #options: SimulateCallOptions;
  #rate: SampleRate;
  #mulaw: boolean;
  #frameMs: number;
  #realtime: boolean;
  #clock: Clock;
  #waitForReplyMs: number;
  #maxWaitMs: number;
  #connectTimeoutMs: number;
  #dialled: Dialled;
  #callSid: string;
  #streamSid: string;
  #streamSidJson: string;
  #accountSid: string;
  #keepAudio: boolean;
  #caller: CallerAudio;
  #dtmf: DtmfPress[];
  #playback: ExotelPlayback;
  #control: CallerControl;
  #silencePayload: string;
  #silenceBytes: number;

  #ws?: WebSocket;
  #sequence = 0;
  #chunk = 0;
  #t0 = 0;
  #virtualMs = 0;
  #opened = false;
  #socketClosed = false;
  #stopped = false;
  #hangup?: "hangup" | "aborted";
  #resolveClosed: () => void = () => {};
  #closed: Promise<void>;
  #firstCallerMediaAt?: number;
  #lastBotFrameAt = 0;
  /** When, on the call's clock, the last audible reply audio will have played. */
  #audibleUntilMs = 0;
  #received: Uint8Array[] = [];
  #report: SimulationReport;

  constructor(options: SimulateCallOptions) {
    this.#options = options;
    if (!isSampleRate(options.sampleRate)) {
      throw new SimulatorOptionError(
        `Invalid sample rate "${options.sampleRate}": expected 8000, 16000 or 24000`,
      );
    }
    this.#rate = options.sampleRate;
    const encoding = options.encoding ?? "pcm";
    if (encoding !== "pcm" && encoding !== "mulaw") {
      throw new SimulatorOptionError(
        `Invalid encoding "${encoding}": expected "pcm" or "mulaw"`,
      );
    }
    if (encoding === "mulaw" && this.#rate !== 8000) {
      throw new SimulatorOptionError(
        `Invalid sample rate "${this.#rate}" for μ-law: Exotel streams μ-law at 8000 Hz only`,
      );
    }
    this.#mulaw = encoding === "mulaw";
    if (options.pcm.length % 2 !== 0) {
      throw new SimulatorOptionError(
        `Invalid PCM length "${options.pcm.length}": expected an even number of bytes`,
      );
    }
    this.#frameMs = integerOption("frameMs", options.frameMs ?? 100, 10, 1000);
    this.#realtime = options.realtime ?? true;
    this.#clock = options.clock ?? systemClock;
    this.#waitForReplyMs = integerOption(
      "waitForReplyMs",
      options.waitForReplyMs ?? 3000,
      0,
    );
    this.#maxWaitMs = integerOption("maxWaitMs", options.maxWaitMs ?? 60000, 0);
    this.#connectTimeoutMs = integerOption(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? 10000,
      1,
    );
    this.#dialled = dial(options.url, options.sampleRate, options.headers);
    this.#callSid = options.callSid ?? this.#dialled.urlCallId ?? randomSid();
    this.#streamSid = options.streamSid ?? this.#dialled.urlStreamSid ??
      randomSid();
    if (this.#dialled.urlCallId === undefined) {
      const url = new URL(this.#dialled.url);
      url.searchParams.set("call_id", this.#callSid);
      this.#dialled.url = url.href;
    }
    this.#streamSidJson = JSON.stringify(this.#streamSid);
    this.#accountSid = options.accountSid ?? "simulator";
    this.#keepAudio = options.keepAudio ?? true;

    this.#caller = new CallerAudio(this.#rate);
    this.#caller.add(options.pcm, 0);
    for (const [index, event] of (options.events ?? []).entries()) {
      this.#caller.add(
        eventPcm(event, index, this.#rate),
        timeOption(`events[${index}].atMs`, event.atMs),
      );
    }
    this.#dtmf = (options.dtmf ?? []).map((press, index) => {
      timeOption(`dtmf[${index}].atMs`, press.atMs);
      checkDigit(press.digit);
      return press;
    }).sort((a, b) => a.atMs - b.atMs);

    this.#playback = new ExotelPlayback(this.#rate, {
      keepAudio: this.#keepAudio,
      onMark: (name) => this.#echoMark(name),
    });
    this.#control = this.#createControl();
    this.#silenceBytes = Math.round(this.#frameMs * this.#rate / 1000) * 2;
    this.#silencePayload = this.#mulaw
      ? new Uint8Array(this.#silenceBytes / 2).fill(MULAW_SILENCE).toBase64()
      : new Uint8Array(this.#silenceBytes).toBase64();
    this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#report = {
      url: this.#dialled.url,
      callSid: this.#callSid,
      streamSid: this.#streamSid,
      sampleRate: this.#rate,
      encoding,
      connected: false,
      endReason: "completed",
      sent: emptyStats(),
      received: emptyStats(),
      badChunks: [],
      badFrames: [],
      marksReceived: [],
      marksEchoed: [],
      marksDropped: [],
      clearsReceived: 0,
      dtmfSent: [],
      callMs: 0,
      wallMs: 0,
      heardBytes: 0,
      clearedBytes: 0,
      receivedPcm: new Uint8Array(0),
      heardPcm: new Uint8Array(0),
    };
  }

  async run(): Promise<SimulationReport> {
    const started = performance.now();
    const signal = this.#options.signal;
    if (signal?.aborted) {
      this.#report.endReason = "aborted";
      return this.#report;
    }
    const onAbort = () => {
      this.#hangup ??= "aborted";
      if (!this.#opened) this.#ws?.close();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (await this.#connect()) {
        await this.#stream();
        await this.#hangUp();
      } else {
        this.#report.endReason = this.#hangup === "aborted"
          ? "aborted"
          : "connect_failed";
        await within(this.#closed, CLOSE_TIMEOUT_MS);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    this.#report.wallMs = performance.now() - started;
    return this.#finishReport();
  }

  #connect(): Promise<boolean> {
    const ws = new WebSocket(this.#dialled.url, {
      headers: this.#dialled.headers,
    });
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#report.error ??=
          `No answer to the WebSocket handshake within ${this.#connectTimeoutMs} ms`;
        ws.close();
        resolve(false);
      }, this.#connectTimeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        this.#opened = true;
        this.#report.connected = true;
        resolve(true);
      };
      ws.onerror = (event) => {
        const message = event instanceof ErrorEvent
          ? event.message
          : "WebSocket error";
        this.#report.error ??= message;
        const status = /status code:?\s*(\d{3})/i.exec(message);
        if (status && !this.#opened) {
          this.#report.httpStatus = Number(status[1]);
        }
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        this.#socketClosed = true;
        this.#report.closeCode = event.code;
        this.#report.closeReason = event.reason;
        this.#resolveClosed();
        resolve(false);
      };
      ws.onmessage = (event) => this.#onFrame(event.data);
    });
  }

  async #stream(): Promise<void> {
    this.#t0 = this.#clock.now();
    this.#send('{"event":"connected"}');
    this.#send(this.#startFrame());
    let waitStartedAt: number | undefined;
    for (let frame = 0;; frame++) {
      if (frame > 0) {
        await this.#waitForFrame(frame, waitStartedAt !== undefined);
      }
      if (this.#socketClosed) {
        this.#report.endReason = "closed_by_bot";
        return;
      }
      if (this.#hangup) {
        this.#report.endReason = this.#hangup;
        return;
      }
      const frameStartMs = frame * this.#frameMs;
      this.#playback.advance(this.#callMs());
      while (this.#dtmf.length > 0 && this.#dtmf[0].atMs <= frameStartMs) {
        const press = this.#dtmf.shift();
        if (press) this.#sendDtmf(press.digit, press.durationMs ?? 100);
      }
      this.#sendMedia(frameStartMs);

      const nextStartMs = frameStartMs + this.#frameMs;
      const scriptDone = nextStartMs >= this.#caller.endMs &&
        this.#dtmf.length === 0;
      const now = this.#clock.now();
      if (!scriptDone) {
        waitStartedAt = undefined;
        continue;
      }
      waitStartedAt ??= now;
      const quietMs = now - Math.max(this.#lastBotFrameAt, waitStartedAt);
      const played = this.#playback.idle ||
        this.#callMs() >= this.#audibleUntilMs;
      if (quietMs >= this.#waitForReplyMs && played) {
        this.#report.endReason = "completed";
        return;
      }
      if (now - waitStartedAt >= this.#maxWaitMs) {
        this.#report.endReason = "max_wait";
        return;
      }
    }
  }

  async #waitForFrame(frame: number, waiting: boolean): Promise<void> {
    if (this.#realtime) {
      const delay = this.#t0 + frame * this.#frameMs - this.#clock.now();
      if (delay > 0) await this.#sleep(delay);
      return;
    }
    // Waiting for a bot that thinks in real time: racing silence at it would
    // only bury it. Otherwise one macrotask turn per frame lets its frames in.
    if (waiting && this.#playback.idle) await this.#sleep(this.#frameMs);
    else await sleep(0);
    while (
      this.#ws && this.#ws.bufferedAmount > FAST_MAX_BUFFERED_BYTES &&
      !this.#socketClosed
    ) {
      await sleep(1);
    }
    this.#virtualMs = frame * this.#frameMs;
  }

  async #hangUp(): Promise<void> {
    this.#playback.finish(this.#callMs());
    this.#stopped = true;
    const ws = this.#ws;
    if (!ws || this.#socketClosed) return;
    this.#send(JSON.stringify({
      event: "stop",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      stop: {
        call_sid: this.#callSid,
        account_sid: this.#accountSid,
        reason: "callended",
      },
    }));
    ws.close(1000);
    if (!await within(this.#closed, CLOSE_TIMEOUT_MS)) {
      this.#report.error ??=
        `The bot did not answer the close handshake within ${CLOSE_TIMEOUT_MS} ms`;
    }
  }

  #callMs(): number {
    return this.#realtime ? this.#clock.now() - this.#t0 : this.#virtualMs;
  }

  /** Waits `ms` on the call's clock. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#clock.schedule(resolve, ms));
  }

  #send(text: string): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    this.#report.sent.frames++;
    this.#report.sent.frameBytes += text.length;
  }

  #startFrame(): string {
    const start = {
      stream_sid: this.#streamSid,
      call_sid: this.#callSid,
      account_sid: this.#accountSid,
      from: this.#options.from ?? "+919876543210",
      to: this.#options.to ?? "08047491899",
      custom_parameters: this.#options.customParameters ??
        this.#dialled.customParameters,
      media_format: this.#mulaw
        ? { encoding: "audio/x-mulaw", sample_rate: "8000", bit_rate: "8" }
        : {
          encoding: "audio/x-raw",
          sample_rate: String(this.#rate),
          bit_rate: "16",
        },
    };
    return JSON.stringify({
      event: "start",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      start,
    });
  }

  #sendMedia(frameStartMs: number): void {
    const pcm = this.#caller.frame(frameStartMs, this.#frameMs);
    const payload = pcm
      ? (this.#mulaw ? encodeMulaw(pcm) : pcm).toBase64()
      : this.#silencePayload;
    // Built by hand: this runs for every frame of every simulated call.
    this.#send(
      `{"event":"media","sequence_number":"${++this
        .#sequence}","stream_sid":${this.#streamSidJson},"media":{"chunk":"${++this
        .#chunk}","timestamp":"${
        Math.round(frameStartMs)
      }","payload":"${payload}"}}`,
    );
    this.#report.sent.mediaFrames++;
    this.#report.sent.pcmBytes += pcm?.length ?? this.#silenceBytes;
    this.#firstCallerMediaAt ??= this.#clock.now();
  }

  #sendDtmf(digit: string, durationMs: number): void {
    this.#send(JSON.stringify({
      event: "dtmf",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      dtmf: { digit, duration: String(durationMs) },
    }));
    this.#report.dtmfSent.push(digit);
  }

  #echoMark(name: string): void {
    if (this.#stopped) return;
    this.#send(JSON.stringify({
      event: "mark",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      mark: { name },
    }));
    this.#report.marksEchoed.push(name);
  }

  #onFrame(data: unknown): void {
    const received = this.#report.received;
    received.frames++;
    if (typeof data !== "string") {
      const bytes = data instanceof ArrayBuffer ? data.byteLength : 0;
      received.frameBytes += bytes;
      this.#badFrame("binary", `<${bytes} bytes>`);
      return;
    }
    received.frameBytes += data.length;
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      this.#badFrame("invalid_json", data);
      return;
    }
    if (!isFields(frame)) {
      this.#badFrame("not_an_object", data);
      return;
    }
    if (this.#stopped) return;
    try {
      this.#onEvent(frame, data);
    } catch (error) {
      // A failing onReplyAudio script must end the call, not the process.
      this.#report.error ??= `onReplyAudio failed: ${errorMessage(error)}`;
      this.#hangup ??= "hangup";
    }
  }

  #onEvent(frame: Fields, text: string): void {
    const event = frame.event;
    const now = this.#callMs();
    switch (event) {
      case "media":
        this.#onMedia(frame);
        return;
      case "mark": {
        const mark = isFields(frame.mark) ? frame.mark : {};
        const name = typeof mark.name === "string" ? mark.name : undefined;
        if (name === undefined) {
          this.#badFrame("missing_field", text, "mark");
          return;
        }
        this.#checkStreamSid(frame, text, "mark");
        this.#report.marksReceived.push(name);
        this.#playback.mark(name, now);
        return;
      }
      case "clear":
        this.#checkStreamSid(frame, text, "clear");
        this.#report.clearsReceived++;
        this.#report.marksDropped.push(...this.#playback.clear(now));
        return;
      default:
        this.#badFrame(
          "unknown_event",
          text,
          typeof event === "string" ? event : undefined,
        );
    }
  }

  #onMedia(frame: Fields): void {
    const received = this.#report.received;
    const index = received.mediaFrames++;
    const problems: ChunkProblem[] = [];
    const streamSid = streamSidOf(frame);
    if (streamSid === undefined) problems.push("missing_stream_sid");
    else if (streamSid !== this.#streamSid) problems.push("wrong_stream_sid");
    const media = isFields(frame.media) ? frame.media : {};
    let wire: Uint8Array | undefined;
    if (typeof media.payload === "string") {
      try {
        wire = Uint8Array.fromBase64(media.payload);
      } catch {
        wire = undefined;
      }
    }
    if (!wire) {
      problems.push("invalid_payload");
      this.#report.badChunks.push({ index, bytes: 0, streamSid, problems });
      return;
    }
    problems.push(...this.#chunkProblems(wire.length));
    if (problems.length > 0) {
      this.#report.badChunks.push({
        index,
        bytes: wire.length,
        streamSid,
        problems,
      });
    }
    const pcm = this.#mulaw ? decodeMulaw(wire) : wire;
    received.pcmBytes += pcm.length;
    if (this.#firstCallerMediaAt !== undefined) {
      this.#report.timeToFirstReplyMs ??= this.#clock.now() -
        this.#firstCallerMediaAt;
    }
    if (this.#keepAudio) this.#received.push(pcm);
    this.#playback.enqueue(pcm, this.#callMs());
    // The echo bot echoes the silence sent while waiting: that is no reply.
    if (isAudible(pcm)) {
      this.#lastBotFrameAt = this.#clock.now();
      this.#audibleUntilMs = this.#playback.tailMs;
    }
    this.#options.onReplyAudio?.(pcm, this.#control);
  }

  /** What breaks Exotel's chunk rules in a payload of `bytes` on the wire. */
  #chunkProblems(bytes: number): ChunkProblem[] {
    const problems: ChunkProblem[] = [];
    if (this.#mulaw) {
      if (bytes % MULAW_CHUNK_ALIGN_BYTES !== 0) {
        problems.push("not_multiple_of_160");
      }
      if (bytes < MULAW_CHUNK_ALIGN_BYTES) problems.push("too_small");
      if (bytes > MAX_CHUNK_BYTES) problems.push("too_large");
    } else if (!isValidChunkSize(bytes)) {
      if (bytes % CHUNK_ALIGN_BYTES !== 0) problems.push("not_multiple_of_320");
      if (bytes < MIN_CHUNK_BYTES) problems.push("too_small");
      if (bytes > MAX_CHUNK_BYTES) problems.push("too_large");
    }
    return problems;
  }

  #checkStreamSid(frame: Fields, text: string, event: string): void {
    const streamSid = streamSidOf(frame);
    if (streamSid === undefined) {
      this.#badFrame("missing_stream_sid", text, event);
    } else if (streamSid !== this.#streamSid) {
      this.#badFrame("wrong_stream_sid", text, event);
    }
  }

  #badFrame(problem: FrameProblem, text: string, event?: string): void {
    const preview = text.length > PREVIEW_CHARS
      ? `${text.slice(0, PREVIEW_CHARS)}…`
      : text;
    this.#report.badFrames.push(
      event === undefined ? { problem, preview } : { problem, event, preview },
    );
  }

  #createControl(): CallerControl {
    const callMs = () => this.#callMs();
    return {
      get callMs() {
        return callMs();
      },
      play: (pcm) => {
        const next = Math.floor(this.#callMs() / this.#frameMs) + 1;
        this.#caller.add(pcm, next * this.#frameMs);
      },
      dtmf: (digit) => {
        checkDigit(digit);
        this.#dtmf.unshift({ atMs: 0, digit });
      },
      hangup: () => {
        this.#hangup ??= "hangup";
      },
    };
  }

  #finishReport(): SimulationReport {
    const report = this.#report;
    report.callMs = this.#opened ? this.#callMs() : 0;
    report.heardBytes = this.#playback.heardBytes;
    report.clearedBytes = this.#playback.droppedBytes;
    report.receivedPcm = concat(this.#received);
    report.heardPcm = this.#playback.heard();
    return report;
  }
}

type Fields = Record<string, unknown>;

function isFields(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function streamSidOf(frame: Fields): string | undefined {
  const value = frame.stream_sid ?? frame.streamSid;
  return typeof value === "string" ? value : undefined;
}

function dial(
  address: string,
  sampleRate: SampleRate,
  headersInit: HeadersInit | undefined,
): Dialled {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    url = new URL("invalid:");
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new SimulatorOptionError(
      `Invalid URL "${address}": expected a ws:// or wss:// URL`,
    );
  }
  const headers = new Headers(headersInit);
  if (url.username || url.password) {
    // Exotel strips credentials from the applet URL and sends them as Basic auth.
    const credentials = `${decodeURIComponent(url.username)}:${
      decodeURIComponent(url.password)
    }`;
    if (!headers.has("authorization")) {
      headers.set(
        "authorization",
        `Basic ${new TextEncoder().encode(credentials).toBase64()}`,
      );
    }
    url.username = "";
    url.password = "";
  }
  const rate = url.searchParams.get("sample-rate");
  if (rate === null) {
    url.searchParams.set("sample-rate", String(sampleRate));
  } else if (rate !== String(sampleRate)) {
    throw new SimulatorOptionError(
      `Invalid URL sample-rate "${rate}": the audio is at ${sampleRate} Hz`,
    );
  }
  const customParameters: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (!EXOTEL_QUERY_KEYS.has(key)) customParameters[key] = value;
  }
  const callIdKey = CALL_ID_KEYS.find((key) => url.searchParams.has(key));
  return {
    url: url.href,
    headers,
    urlCallId: callIdKey ? url.searchParams.get(callIdKey) ?? "" : undefined,
    urlStreamSid: url.searchParams.get("stream_sid") ?? undefined,
    customParameters,
  };
}

function eventPcm(
  event: CallerAudioEvent,
  index: number,
  sampleRate: SampleRate,
): Uint8Array {
  if ((event.pcm === undefined) === (event.wav === undefined)) {
    throw new SimulatorOptionError(
      `Invalid events[${index}]: expected exactly one of "pcm" and "wav"`,
    );
  }
  if (event.pcm) return event.pcm;
  let wav;
  try {
    wav = decodeWav(event.wav ?? new Uint8Array(0));
  } catch (error) {
    throw new SimulatorOptionError(
      `Invalid events[${index}].wav: ${errorMessage(error)}`,
    );
  }
  if (wav.sampleRate !== sampleRate) {
    throw new SimulatorOptionError(
      `Invalid events[${index}].wav sample rate "${wav.sampleRate}": expected the call's ${sampleRate}`,
    );
  }
  return wav.pcm;
}

function checkDigit(digit: string): void {
  if (!DTMF_DIGIT.test(digit)) {
    throw new SimulatorOptionError(
      `Invalid DTMF digit "${digit}": expected 0-9, *, # or A-D`,
    );
  }
}

function integerOption(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `an integer of at least ${min}`
      : `an integer from ${min} to ${max}`;
    throw new SimulatorOptionError(
      `Invalid ${name} "${value}": expected ${range}`,
    );
  }
  return value;
}

function timeOption(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new SimulatorOptionError(
      `Invalid ${name} "${value}": expected a time in ms, 0 or more`,
    );
  }
  return value;
}

function emptyStats(): DirectionStats {
  return { frames: 0, mediaFrames: 0, pcmBytes: 0, frameBytes: 0 };
}

function randomSid(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise` at most `ms`; true when it settled in time. */
async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `pcm` (a fresh copy, so aligned) holds anything louder than dither. */
function isAudible(pcm: Uint8Array): boolean {
  const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length >> 1);
  return samples.some((sample) => sample > 64 || sample < -64);
}
