/**
 * Silero VAD v5 (MIT), a small neural voice-activity detector, run with ONNX
 * Runtime: natively through `onnxruntime-node` (needs `--allow-ffi`) or as
 * WebAssembly through `onnxruntime-web` (any permission set, Deno Deploy
 * included). The model file ships inside the `@ricky0123/vad-web` npm
 * package; nothing is downloaded at run time.
 *
 * One model is loaded per process and shared; each call has its own
 * detector holding the model's recurrent state. Silero takes 32 ms windows
 * (512 samples at 16 kHz, 256 at 8 kHz; 24 kHz calls are resampled to 16
 * kHz). A cheap energy gate skips inference on windows that are clearly
 * silent, so a quiet line costs next to nothing. The windows of all calls
 * that come due together run through the model in one batch
 * (`silero_batcher.ts`), each call's state in its own row.
 *
 * @module
 */

import { createRequire } from "node:module";
import { Resampler } from "./resample.ts";
import {
  type BatchInput,
  type BatchOutput,
  type BatchRow,
  DEFAULT_MAX_BATCH,
  type Schedule,
  SileroBatcher,
  type SileroBatcherStats,
  type SileroRate,
  STATE_WIDTH,
} from "./silero_batcher.ts";
import {
  BackgroundLevel,
  FOREGROUND_DB,
  type SpeechDetector,
  type SpeechDetectorFactory,
  type SpeechDetectorOptions,
  type SpeechFrame,
} from "./speech_detector.ts";
import { VAD_SAMPLE_RATES, VadConfigError, type VadEvent } from "./vad.ts";

/** How the model runs: `native` (onnxruntime-node) or `wasm` (onnxruntime-web). */
export type SileroRuntime = "native" | "wasm";

/** `VAD_RUNTIME`: `auto` picks `native` when FFI is allowed, else `wasm`. */
export type SileroRuntimeChoice = SileroRuntime | "auto";

/** The accepted values of `VAD_RUNTIME`. */
export const SILERO_RUNTIMES: readonly SileroRuntimeChoice[] = [
  "auto",
  "native",
  "wasm",
];

/** Rows per model run on WebAssembly, where a run of 32 costs more per row than a run of 8. */
export const WASM_MAX_BATCH = 8;

/** Length of one Silero window, in ms of audio. */
export const SILERO_WINDOW_MS = 32;

/** The model file, inside its npm package. */
const MODEL_SPECIFIER = "@ricky0123/vad-web/dist/silero_vad_v5.onnx";

/** Error thrown when the model cannot be loaded or run. */
export class SileroLoadError extends Error {
  /** Which runtime failed. */
  readonly runtime: SileroRuntime;

  /** Creates the error. */
  constructor(runtime: SileroRuntime, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SileroLoadError";
    this.runtime = runtime;
  }
}

type Ort = typeof import("onnxruntime-web");
type Session = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;

/** An inference session started on one ONNX Runtime. */
interface StartedSession {
  runtime: SileroRuntime;
  ort: Ort;
  session: Session;
}

/** Options of {@linkcode loadSileroModel}. */
export interface LoadSileroOptions {
  /** Which runtime; `auto` by default. */
  runtime?: SileroRuntimeChoice;
  /**
   * Most calls' windows per model run: bigger batches cost less per window
   * but hold the event loop longer per run. Default 32 natively (about 1
   * ms a run), 8 on WebAssembly, where bigger batches save nothing more.
   */
  maxBatch?: number;
  /** Called when a model run fails (its windows count as silence). */
  onError?(error: unknown): void;
  /** How long a run waits for more calls' windows, ms (see `silero_batcher.ts`); 0 by default. */
  gatherMs?: number;
  /** The timer that wait runs on: the injected clock's `schedule`. */
  schedule?: Schedule;
}

/**
 * The loaded Silero model, shared by every call. Each row of a run carries
 * its call's own recurrent state, so calls never see each other's audio;
 * the calls' due windows are run together in batches (see
 * `silero_batcher.ts`).
 */
export class SileroModel {
  /** The runtime it runs on. */
  readonly runtime: SileroRuntime;
  /** Batches the calls' windows into shared runs. */
  readonly batcher: SileroBatcher;
  #ort: Ort;
  #session: Session;
  #rates: Map<number, unknown>;

  private constructor(started: StartedSession, options: LoadSileroOptions) {
    const { runtime, ort, session } = started;
    this.runtime = runtime;
    this.#ort = ort;
    this.#session = session;
    this.#rates = new Map(
      [8000, 16000].map((rate) => [
        rate,
        new ort.Tensor("int64", BigInt64Array.from([BigInt(rate)]), []),
      ]),
    );
    this.batcher = new SileroBatcher((batch) => this.runBatch(batch), {
      maxBatch: options.maxBatch ??
        (runtime === "wasm" ? WASM_MAX_BATCH : DEFAULT_MAX_BATCH),
      onError: options.onError,
      gatherMs: options.gatherMs,
      schedule: options.schedule,
    });
  }

  /** Model runs, windows run and the largest batch so far, over every call. */
  get stats(): SileroBatcherStats {
    return this.batcher.stats;
  }

  /** @internal Use {@linkcode loadSileroModel}. */
  static async create(
    runtime: SileroRuntime,
    options: LoadSileroOptions = {},
  ): Promise<SileroModel> {
    let ort: Ort;
    try {
      ort = runtime === "native"
        ? await import("onnxruntime-node") as unknown as Ort
        : await import("onnxruntime-web");
    } catch (error) {
      throw new SileroLoadError(
        runtime,
        `Cannot load ONNX Runtime (${runtime}): ${message(error)}`,
        { cause: error },
      );
    }
    let model: Uint8Array;
    try {
      const path = createRequire(import.meta.url).resolve(MODEL_SPECIFIER);
      model = await Deno.readFile(path);
    } catch (error) {
      throw new SileroLoadError(
        runtime,
        `Cannot read the Silero model "${MODEL_SPECIFIER}": ${message(error)}`,
        { cause: error },
      );
    }
    try {
      if (runtime === "wasm") {
        // One thread: no workers to leak, and calls share the process anyway.
        ort.env.wasm.numThreads = 1;
      }
      const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionProviders: [runtime === "native" ? "cpu" : "wasm"],
      });
      return new SileroModel({ runtime, ort, session }, options);
    } catch (error) {
      throw new SileroLoadError(
        runtime,
        `Cannot start the Silero model on ONNX Runtime (${runtime}): ${
          message(error)
        }`,
        { cause: error },
      );
    }
  }

  /**
   * Runs `rows` windows of one rate at once (`input`: the windows one after
   * another, each with its context; `state`: `[2, rows, 128]`).
   */
  async runBatch(batch: BatchInput): Promise<BatchOutput> {
    const ort = this.#ort;
    const { rows, input, state } = batch;
    const output = await this.#session.run({
      input: new ort.Tensor("float32", input, [rows, input.length / rows]),
      state: new ort.Tensor("float32", state, [2, rows, 128]),
      sr: this.#rates.get(batch.rate) as InstanceType<Ort["Tensor"]>,
    });
    return {
      probabilities: output.output.data as Float32Array,
      state: output.stateN.data as Float32Array,
    };
  }
}

/**
 * Loads the Silero model. With `auto`, the native runtime when this process
 * may load native code (`--allow-ffi`), else WebAssembly.
 *
 * @throws {SileroLoadError} when the runtime or the model cannot be loaded.
 *
 * @example
 * ```ts ignore
 * const model = await loadSileroModel({ runtime: "wasm" });
 * const createDetector = sileroDetector(model);
 * ```
 */
export function loadSileroModel(
  options: LoadSileroOptions = {},
): Promise<SileroModel> {
  const choice = options.runtime ?? "auto";
  const runtime = choice === "auto"
    ? (ffiAllowed() ? "native" : "wasm")
    : choice;
  return SileroModel.create(runtime, options);
}

function ffiAllowed(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Tuning of a {@linkcode SileroVad}. */
export interface SileroVadOptions extends SpeechDetectorOptions {
  /** The level, in dB of 16-bit mean square, below which a window is silence without asking the model. Default 30 (about -60 dBFS). */
  gateDb?: number;
}

/**
 * A factory of Silero detectors on `model`, for the agent.
 *
 * @example
 * ```ts ignore
 * const createDetector = sileroDetector(await loadSileroModel());
 * const detector = createDetector(8000, { onAnalysed: (events) => {} });
 * ```
 */
export function sileroDetector(model: SileroModel): SpeechDetectorFactory {
  return (sampleRate, options) => new SileroVad(model, sampleRate, options);
}

/** Hysteresis: a segment in progress continues while probability stays above `threshold - HYSTERESIS`. */
const HYSTERESIS = 0.15;
/** Windows this far above the noise floor (dB) reach the model even when no speech is in progress. */
const GATE_SNR_DB = 2;
const INITIAL_FLOOR_DB = 45;
/** Queued window arrays a detector keeps for reuse. */
const MAX_SPARE_WINDOWS = 4;
const MIN_FLOOR_DB = 20;

/**
 * Silero VAD for one call: streaming, with the model's state and the
 * segmenting state of this call only.
 */
export class SileroVad implements SpeechDetector {
  /** Which kind it is. */
  readonly kind = "silero";
  #batcher: SileroBatcher;
  /** This call as the batcher sees it: its rate, window, state. */
  #row: BatchRow;
  #sampleRate: number;
  #resampler: Resampler | undefined;
  #window: number;
  #context: number;
  #minSpeechMs: number;
  #minSilenceMs: number;
  #threshold: number;
  #gateDb: number;
  #onFrame: ((frame: SpeechFrame) => void) | undefined;
  #onAnalysed: ((events: VadEvent[]) => void) | undefined;

  /** Context samples, then the window being filled. */
  #input: Float32Array;
  #filled = 0;
  #squares = 0;
  /** Windows waiting for the model, in order, and their levels. */
  #queue: Float32Array[] = [];
  #levels: number[] = [];
  /** Queued windows' arrays, reused once the model has their copy. */
  #spare: Float32Array[] = [];
  /** The level of the window the model is running on, while it runs. */
  #inFlightDb: number | undefined;
  #closed = false;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #windowsDone = 0;
  #floorDb = INITIAL_FLOOR_DB;
  /** Windows the model was asked about, and skipped by the gate. */
  #inferences = 0;
  #gated = 0;

  #background = new BackgroundLevel(SILERO_WINDOW_MS);
  #foregroundMs = 0;
  #isEcho: ((atMs: number, durationMs: number) => boolean) | undefined;
  #inSpeech = false;
  #voicedMs = 0;
  #segmentStart = 0;
  #lastVoicedEnd = 0;

  /**
   * Creates a detector at `sampleRate` (8, 16 or 24 kHz).
   *
   * @throws {VadConfigError} for another rate or an option out of range.
   */
  constructor(
    model: SileroModel,
    sampleRate: number,
    options: SileroVadOptions = {},
  ) {
    if (!(VAD_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
      throw new VadConfigError(
        "sample_rate",
        `Invalid sample rate "${sampleRate}": expected 8000, 16000 or 24000`,
      );
    }
    const threshold = options.threshold ?? 0.5;
    if (!(threshold >= 0.2 && threshold <= 0.95)) {
      throw new VadConfigError(
        "option",
        `Invalid threshold "${threshold}": expected 0.2 to 0.95`,
      );
    }
    this.#batcher = model.batcher;
    this.#sampleRate = sampleRate;
    const rate: SileroRate = sampleRate === 8000 ? 8000 : 16000;
    if (sampleRate === 24000) this.#resampler = new Resampler(24000, 16000);
    this.#window = rate * SILERO_WINDOW_MS / 1000;
    this.#context = rate === 16000 ? 64 : 32;
    this.#input = new Float32Array(this.#context + this.#window);
    this.#row = {
      rate,
      length: this.#input.length,
      state: new Float32Array(2 * STATE_WIDTH),
      take: (into, offset) => this.#take(into, offset),
      answer: (probability) => this.#answer(probability),
    };
    this.#minSpeechMs = options.minSpeechMs ?? 100;
    this.#minSilenceMs = options.minSilenceMs ?? 300;
    this.#threshold = threshold;
    this.#gateDb = options.gateDb ?? 30;
    this.#onFrame = options.onFrame;
    this.#isEcho = options.isEcho;
    this.#onAnalysed = options.onAnalysed;
  }

  /** The input rate. */
  get sampleRate(): number {
    return this.#sampleRate;
  }

  /** Milliseconds of audio analysed so far (whole windows). */
  get audioMs(): number {
    return this.#windowsDone * SILERO_WINDOW_MS;
  }

  /** Speech in the current segment or candidate, in ms; 0 in silence. */
  get speechMs(): number {
    return this.#voicedMs;
  }

  /** Speech in the current segment that stood out from the line's background, in ms. */
  get foregroundMs(): number {
    return this.#foregroundMs;
  }

  /** Whether the stream is between a `speech_start` and its `speech_end`. */
  get inSpeech(): boolean {
    return this.#inSpeech;
  }

  /** Windows the model ran on, and windows the energy gate answered alone. */
  get stats(): { inferences: number; gated: number } {
    return { inferences: this.#inferences, gated: this.#gated };
  }

  /** Adds 16-bit mono PCM; windows are analysed in order, results through the callbacks. */
  push(pcm: Uint8Array): void {
    if (this.#closed) return;
    const bytes = this.#resampler ? this.#resampler.push(pcm) : pcm;
    const samples = new Int16Array(
      bytes.buffer,
      bytes.byteOffset,
      bytes.length >> 1,
    );
    const input = this.#input;
    const start = this.#context;
    const window = this.#window;
    let events: VadEvent[] | undefined;
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i];
      input[start + this.#filled++] = sample / 32768;
      this.#squares += sample * sample;
      if (this.#filled < window) continue;
      const levelDb = 10 * Math.log10(this.#squares / window + 1);
      this.#filled = 0;
      this.#squares = 0;
      if (!this.#busy && this.#gate(levelDb)) {
        this.#gated++;
        this.#judge(0, levelDb, events ??= []);
      } else {
        // Windows behind one the model is on must wait their turn: each
        // needs the state the one before it leaves.
        const queued = this.#spare.pop() ?? new Float32Array(input.length);
        queued.set(input);
        this.#queue.push(queued);
        this.#levels.push(levelDb);
      }
      // The next window's context is this window's end.
      input.copyWithin(0, input.length - start);
    }
    if (events) this.#onAnalysed?.(events);
    if (this.#queue.length > 0) this.#batcher.request(this.#row);
  }

  /** Resolves once every window pushed so far is analysed; later pushes are ignored. */
  close(): Promise<void> {
    this.#closed = true;
    if (!this.#busy) return Promise.resolve();
    this.#closing ??= new Promise((resolve) => this.#idle = resolve);
    return this.#closing;
  }

  /** Whether windows are waiting for the model or on it. */
  get #busy(): boolean {
    return this.#queue.length > 0 || this.#inFlightDb !== undefined;
  }

  /**
   * For the batcher: answers the waiting windows the gate can answer, and
   * copies the first that needs the model into `into` at `offset`.
   */
  #take(into: Float32Array, offset: number): boolean {
    while (this.#queue.length > 0) {
      const window = this.#queue.shift()!;
      const levelDb = this.#levels.shift()!;
      // A few spares cover a call fed 20 ms at a time; a long push's
      // backlog is not kept.
      if (this.#spare.length < MAX_SPARE_WINDOWS) this.#spare.push(window);
      if (this.#gate(levelDb)) {
        this.#gated++;
        const events: VadEvent[] = [];
        this.#judge(0, levelDb, events);
        this.#onAnalysed?.(events);
        continue;
      }
      into.set(window, offset);
      this.#inFlightDb = levelDb;
      return true;
    }
    this.#settle();
    return false;
  }

  /** For the batcher: the model's answer for the window `#take` gave. */
  #answer(probability: number): void {
    const levelDb = this.#inFlightDb;
    if (levelDb === undefined) return;
    this.#inFlightDb = undefined;
    this.#inferences++;
    const events: VadEvent[] = [];
    this.#judge(probability, levelDb, events);
    try {
      this.#onAnalysed?.(events);
    } finally {
      // The next window goes on even when a handler threw.
      if (this.#queue.length > 0) this.#batcher.request(this.#row);
      else this.#settle();
    }
  }

  /** Resolves a pending `close` once nothing is waiting. */
  #settle(): void {
    if (this.#busy || !this.#idle) return;
    this.#idle();
    this.#idle = undefined;
  }

  /** Whether the energy gate answers for this window without the model. */
  #gate(levelDb: number): boolean {
    if (levelDb < this.#gateDb) return true;
    if (this.#inSpeech || this.#voicedMs > 0) return false;
    return levelDb < this.#floorDb + GATE_SNR_DB;
  }

  #judge(probability: number, levelDb: number, events: VadEvent[]): void {
    const atMs = this.#windowsDone * SILERO_WINDOW_MS;
    const endMs = atMs + SILERO_WINDOW_MS;
    this.#windowsDone++;
    const isSpeech = probability >= this.#threshold;
    this.#updateFloor(levelDb, isSpeech);
    const above = this.#background.prominence(levelDb);
    this.#onFrame?.({
      atMs,
      durationMs: SILERO_WINDOW_MS,
      isSpeech,
      probability,
    });
    const continues = this.#inSpeech &&
      probability >= this.#threshold - HYSTERESIS;
    if (isSpeech || continues) {
      if (this.#voicedMs === 0) this.#segmentStart = atMs;
      if (isSpeech) this.#voicedMs += SILERO_WINDOW_MS;
      if (
        isSpeech && above >= FOREGROUND_DB &&
        !this.#isEcho?.(atMs, SILERO_WINDOW_MS)
      ) {
        this.#foregroundMs += SILERO_WINDOW_MS;
      }
      this.#lastVoicedEnd = endMs;
      if (!this.#inSpeech && this.#voicedMs >= this.#minSpeechMs) {
        this.#inSpeech = true;
        events.push({ type: "speech_start", atMs: this.#segmentStart });
      }
      return;
    }
    if (this.#voicedMs === 0) return;
    if (endMs - this.#lastVoicedEnd < this.#minSilenceMs) return;
    if (this.#inSpeech) {
      events.push({
        type: "speech_end",
        atMs: this.#lastVoicedEnd,
        durationMs: this.#lastVoicedEnd - this.#segmentStart,
        voicedMs: this.#voicedMs,
      });
      this.#inSpeech = false;
    }
    this.#voicedMs = 0;
    this.#foregroundMs = 0;
  }

  /** The energy gate's noise floor: falls fast, rises slowly, and not on speech. */
  #updateFloor(levelDb: number, isSpeech: boolean): void {
    const delta = levelDb - this.#floorDb;
    if (delta < 0) this.#floorDb += 0.2 * delta;
    else if (!isSpeech) this.#floorDb += Math.min(0.05 * delta, 0.3);
    if (this.#floorDb < MIN_FLOOR_DB) this.#floorDb = MIN_FLOOR_DB;
  }
}
