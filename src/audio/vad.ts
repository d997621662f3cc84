/**
 * Voice-activity detection on 16-bit mono PCM at 8, 16 or 24 kHz. Pure: no
 * I/O, no clocks; every time is audio time (milliseconds of audio pushed).
 *
 * Loudness alone cannot tell a caller from a noisy line: pink noise is as
 * loud as quiet speech. So a frame counts as speech only when it is both
 * louder than an adaptive noise floor and periodic — voiced speech repeats at
 * its pitch period (70–400 Hz), noise does not. Periodicity is the peak
 * normalised autocorrelation of the pre-emphasised signal over the pitch lags;
 * pre-emphasis flattens the low-frequency tilt that makes pink noise look
 * correlated. Unvoiced sounds ("h", "s") next to voiced ones join the segment
 * through the onset look-back and the trailing extension, and pauses shorter
 * than `minSilenceMs` are bridged.
 *
 * Analysis runs at 8 kHz in 20 ms frames whatever the input rate, so results
 * match across rates and the cost per call stays small.
 *
 * @module
 */

import { Resampler } from "./resample.ts";

/** Rates a {@linkcode VoiceActivityDetector} accepts. */
export const VAD_SAMPLE_RATES = [8000, 16000, 24000] as const;

/** Length of one analysis frame, in milliseconds of audio. */
export const VAD_FRAME_MS = 20;

/** A change between silence and speech. */
export type VadEvent =
  /** Speech began at `atMs` (reported once `minSpeechMs` of voiced audio confirmed it). */
  | { type: "speech_start"; atMs: number }
  /**
   * Speech ended at `atMs` (reported after `minSilenceMs` without voice, or
   * on flush); `durationMs` is from its start to `atMs`, `voicedMs` the voiced
   * frames within it.
   */
  | { type: "speech_end"; atMs: number; durationMs: number; voicedMs: number };

/** What the detector made of one 20 ms frame. */
export interface VadFrame {
  /** Where the frame starts, in ms of audio. */
  atMs: number;
  /** Whether the frame is voiced speech: `probability >= threshold`. */
  isSpeech: boolean;
  /** Confidence from 0 to 1 that the frame is voiced speech (a score, not calibrated). */
  probability: number;
  /** Frame level in dB (mean square of the 16-bit samples). */
  levelDb: number;
  /** The current noise floor estimate, in the same dB. */
  noiseFloorDb: number;
  /** Peak normalised autocorrelation over pitch lags, 0 when the frame was too quiet to measure. */
  periodicity: number;
  /** Whether the frame was rejected as a pure tone (dial, ringback, DTMF) despite its periodicity. */
  tonal: boolean;
}

/** Tuning of a {@linkcode VoiceActivityDetector}. */
export interface VadOptions {
  /** Voiced audio needed before `speech_start` is reported (onset debounce). Default 100. */
  minSpeechMs?: number;
  /** Audio without voice before `speech_end` is reported (hangover). Default 300. */
  minSilenceMs?: number;
  /** Frame probability at which a frame counts as speech, from 0.05 to 0.95. Default 0.5. */
  threshold?: number;
  /** Called with every analysed frame, in order, e.g. for a barge-in guard. */
  onFrame?: (frame: VadFrame) => void;
}

/** Error thrown for a sample rate or option the detector does not support. */
export class VadConfigError extends RangeError {
  /** What was wrong. */
  readonly code: "sample_rate" | "option";

  /** Creates the error. */
  constructor(code: VadConfigError["code"], message: string) {
    super(message);
    this.name = "VadConfigError";
    this.code = code;
  }
}

const RATE = 8000;
const FRAME = RATE * VAD_FRAME_MS / 1000;
/** Pitch lags searched: 400 Hz down to 70 Hz at 8 kHz. */
const MIN_LAG = 20;
const MAX_LAG = 114;
/** Shortest lag searched for the anti-correlation of a pure tone (a 2 kHz half-period). */
const MIN_TONE_LAG = 2;
/**
 * A frame whose autocorrelation falls below minus this is one or two pure
 * tones (dial, ringback, DTMF: measured -0.95 to -1.0), not a voice (espeak
 * speech stays above -0.9: its many harmonics never cancel in phase).
 */
const TONALITY_LIMIT = 0.94;
const PRE_EMPHASIS = 0.95;
/** Below this level (about -60 dBFS) nothing is speech, whatever the floor. */
const MIN_SPEECH_DB = 30;
const MIN_FLOOR_DB = 20;
/** Where the floor starts: low, so speech in the very first frames is heard. */
const INITIAL_FLOOR_DB = 45;
/** Periodicity maps to a score of 0 at the first value and 1 at the second. */
const PERIODICITY_RAMP = [0.3, 0.6] as const;
/** Level above the floor, in dB, maps to 0 at the first value and 1 at the second. */
const SNR_RAMP = [3, 9] as const;
/** A frame this far above the floor is "active" and may extend a voiced segment. */
const ACTIVE_SNR_DB = 6;
/** How far the start may reach back over active frames before the first voiced one. */
const MAX_LOOKBACK_MS = 200;
/** How far the end may reach over active frames after the last voiced one. */
const MAX_TRAIL_MS = 200;
/** Floor smoothing: falls fast to quieter frames, rises slowly on louder ones. */
const FLOOR_FALL = 0.2;
const FLOOR_RISE = 0.05;
/** Per-frame cap on the rise: non-voiced frames (noise), and voiced ones (a steady hum). */
const FLOOR_RISE_MAX_DB = 0.3;
const FLOOR_RISE_MAX_VOICED_DB = 0.02;

function ramp(value: number, [low, high]: readonly [number, number]): number {
  return value <= low ? 0 : value >= high ? 1 : (value - low) / (high - low);
}

function checkMs(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0 && value <= 60_000)) {
    throw new VadConfigError(
      "option",
      `Invalid ${name} "${value}": expected 0 to 60000 ms`,
    );
  }
  return value;
}

/**
 * Finds speech in a stream of 16-bit mono PCM pushed in pieces of any size.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { decodeWav } from "./wav.ts";
 *
 * const hello = new URL("../../tests/fixtures/audio/hello_8000.wav", import.meta.url);
 * const { pcm } = decodeWav(await Deno.readFile(hello));
 * const vad = new VoiceActivityDetector(8000, { minSilenceMs: 500 });
 * const events = [...vad.push(pcm), ...vad.push(new Uint8Array(16000))]; // then 1 s of silence
 * assertEquals(events.map((event) => event.type), ["speech_start", "speech_end"]);
 * assertEquals(events[0], { type: "speech_start", atMs: 500 });
 * assertEquals(vad.inSpeech, false);
 * ```
 */
export class VoiceActivityDetector {
  #sampleRate: number;
  #minSpeechMs: number;
  #minSilenceMs: number;
  #threshold: number;
  #onFrame: ((frame: VadFrame) => void) | undefined;
  #resampler: Resampler;

  /** Raw samples of the frame being filled. */
  #frame = new Float64Array(FRAME);
  #filled = 0;
  /** Pre-emphasised signal: `MAX_LAG` samples of history, then the frame. */
  #emphasised = new Float64Array(MAX_LAG + FRAME);
  #energyPrefix = new Float64Array(MAX_LAG + FRAME + 1);
  #lastSample = 0;
  /** Results of the last autocorrelation: peak over pitch lags, deepest trough over all lags. */
  #peak = 0;
  #trough = 0;
  #framesDone = 0;
  #floorDb = INITIAL_FLOOR_DB;
  #last: VadFrame | undefined;

  #inSpeech = false;
  /** Start of the run of active frames the current frame belongs to, if any. */
  #activeSince: number | undefined;
  /** Start of the candidate (before confirmation) or current segment. */
  #segmentStart = 0;
  #voicedMs = 0;
  #lastVoicedEnd = -1;
  /** End of the segment so far: the last voiced frame plus active frames right after it. */
  #segmentEnd = -1;

  /**
   * Creates a detector for PCM at `sampleRate`.
   *
   * @throws {VadConfigError} for a rate other than 8000, 16000 or 24000, or an option out of range.
   */
  constructor(sampleRate: number, options: VadOptions = {}) {
    if (!(VAD_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
      throw new VadConfigError(
        "sample_rate",
        `Invalid sample rate "${sampleRate}": expected 8000, 16000 or 24000`,
      );
    }
    const threshold = options.threshold ?? 0.5;
    if (!(threshold >= 0.05 && threshold <= 0.95)) {
      throw new VadConfigError(
        "option",
        `Invalid threshold "${threshold}": expected 0.05 to 0.95`,
      );
    }
    this.#sampleRate = sampleRate;
    this.#minSpeechMs = checkMs("minSpeechMs", options.minSpeechMs ?? 100);
    this.#minSilenceMs = checkMs("minSilenceMs", options.minSilenceMs ?? 300);
    this.#threshold = threshold;
    this.#onFrame = options.onFrame;
    // Analysis only needs the telephone band; a shorter filter than playback's is plenty.
    this.#resampler = new Resampler(sampleRate, RATE, {
      attenuationDb: 50,
      passband: 0.8,
    });
  }

  /** The input rate. */
  get sampleRate(): number {
    return this.#sampleRate;
  }

  /** Milliseconds of audio analysed so far (whole frames). */
  get audioMs(): number {
    return this.#framesDone * VAD_FRAME_MS;
  }

  /** Whether the most recent frame was voiced speech. */
  get isSpeech(): boolean {
    return this.#last?.isSpeech ?? false;
  }

  /** Speech probability of the most recent frame (0 before any frame). */
  get probability(): number {
    return this.#last?.probability ?? 0;
  }

  /** The most recent frame, or `undefined` before the first. */
  get lastFrame(): VadFrame | undefined {
    return this.#last;
  }

  /** Whether the stream is between a `speech_start` and its `speech_end`. */
  get inSpeech(): boolean {
    return this.#inSpeech;
  }

  /**
   * Voiced audio, in ms, in the current segment or in the candidate awaiting
   * confirmation; 0 in silence. A barge-in guard compares it with a minimum
   * to ignore backchannels ("hmm", "okay").
   */
  get speechMs(): number {
    return this.#voicedMs;
  }

  /** Adds PCM (any length) and returns the events it completes, in order. */
  push(pcm: Uint8Array): VadEvent[] {
    const events: VadEvent[] = [];
    this.#consume(this.#resampler.push(pcm), events);
    return events;
  }

  /**
   * Ends the stream: analyses what the resampler held back, reports
   * `speech_end` for speech still going, and resets for a new stream. A
   * partial last frame is dropped.
   */
  flush(): VadEvent[] {
    const events: VadEvent[] = [];
    this.#consume(this.#resampler.flush(), events);
    if (this.#inSpeech) this.#endSegment(events);
    this.reset();
    return events;
  }

  /** Forgets everything and starts a new stream at audio time 0. */
  reset(): void {
    this.#resampler.reset();
    this.#filled = 0;
    this.#emphasised.fill(0);
    this.#lastSample = 0;
    this.#framesDone = 0;
    this.#floorDb = INITIAL_FLOOR_DB;
    this.#last = undefined;
    this.#inSpeech = false;
    this.#activeSince = undefined;
    this.#voicedMs = 0;
    this.#lastVoicedEnd = -1;
    this.#segmentEnd = -1;
  }

  #consume(pcm: Uint8Array, events: VadEvent[]): void {
    const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    const frame = this.#frame;
    for (let i = 0; i < samples.length;) {
      const take = Math.min(FRAME - this.#filled, samples.length - i);
      for (let k = 0; k < take; k++) frame[this.#filled + k] = samples[i + k];
      this.#filled += take;
      i += take;
      if (this.#filled === FRAME) {
        this.#filled = 0;
        this.#analyse(events);
      }
    }
  }

  #analyse(events: VadEvent[]): void {
    const frame = this.#frame;
    const y = this.#emphasised;
    let sum = 0;
    let previous = this.#lastSample;
    for (let n = 0; n < FRAME; n++) {
      const x = frame[n];
      sum += x * x;
      y[MAX_LAG + n] = x - PRE_EMPHASIS * previous;
      previous = x;
    }
    this.#lastSample = previous;
    const levelDb = 10 * Math.log10(sum / FRAME + 1);
    const snrDb = levelDb - this.#floorDb;
    const loudEnough = levelDb >= MIN_SPEECH_DB;
    // The autocorrelation costs most; quiet frames cannot be speech, so skip it for them.
    const measured = loudEnough && snrDb >= SNR_RAMP[0];
    if (measured) this.#autocorrelate();
    const periodicity = measured ? this.#peak : 0;
    const tonal = measured && this.#trough <= -TONALITY_LIMIT;
    const probability = loudEnough && !tonal
      ? Math.min(ramp(periodicity, PERIODICITY_RAMP), ramp(snrDb, SNR_RAMP))
      : 0;
    const isSpeech = probability >= this.#threshold;
    const active = loudEnough && snrDb >= ACTIVE_SNR_DB;
    const atMs = this.#framesDone * VAD_FRAME_MS;
    const noiseFloorDb = this.#floorDb;
    this.#updateFloor(levelDb, isSpeech);
    y.copyWithin(0, FRAME, FRAME + MAX_LAG);
    this.#framesDone++;
    this.#last = {
      atMs,
      isSpeech,
      probability,
      levelDb,
      noiseFloorDb,
      periodicity,
      tonal,
    };
    this.#onFrame?.(this.#last);
    this.#track({ atMs, isSpeech, active }, events);
  }

  /**
   * Normalised autocorrelation of the pre-emphasised frame: its peak over the
   * pitch lags into `#peak`, its deepest trough over all lags into `#trough`.
   */
  #autocorrelate(): void {
    const y = this.#emphasised;
    const prefix = this.#energyPrefix;
    for (let n = 0; n < y.length; n++) prefix[n + 1] = prefix[n] + y[n] * y[n];
    const frameEnergy = prefix[MAX_LAG + FRAME] - prefix[MAX_LAG];
    let peak = 0;
    let trough = 0;
    for (let lag = MIN_TONE_LAG; lag <= MAX_LAG && frameEnergy > 0; lag++) {
      const lagEnergy = prefix[MAX_LAG + FRAME - lag] - prefix[MAX_LAG - lag];
      if (lagEnergy <= 0) continue;
      const base = MAX_LAG - lag;
      let dot = 0;
      for (let n = 0; n < FRAME; n++) dot += y[MAX_LAG + n] * y[base + n];
      const r = dot / Math.sqrt(frameEnergy * lagEnergy);
      if (lag >= MIN_LAG && r > peak) peak = r;
      if (r < trough) trough = r;
    }
    this.#peak = peak;
    this.#trough = trough;
  }

  #updateFloor(levelDb: number, isSpeech: boolean): void {
    const delta = levelDb - this.#floorDb;
    if (delta < 0) {
      this.#floorDb += FLOOR_FALL * delta;
    } else {
      const cap = isSpeech ? FLOOR_RISE_MAX_VOICED_DB : FLOOR_RISE_MAX_DB;
      this.#floorDb += Math.min(FLOOR_RISE * delta, cap);
    }
    if (this.#floorDb < MIN_FLOOR_DB) this.#floorDb = MIN_FLOOR_DB;
  }

  #track(
    frame: { atMs: number; isSpeech: boolean; active: boolean },
    events: VadEvent[],
  ): void {
    const atMs = frame.atMs;
    const endMs = atMs + VAD_FRAME_MS;
    const wasActive = this.#activeSince !== undefined;
    if (frame.active || frame.isSpeech) {
      if (!wasActive) this.#activeSince = atMs;
    } else {
      this.#activeSince = undefined;
    }

    if (frame.isSpeech) {
      if (this.#voicedMs === 0) {
        this.#segmentStart = Math.max(
          this.#activeSince ?? atMs,
          atMs - MAX_LOOKBACK_MS,
          this.#segmentEnd,
        );
      }
      this.#voicedMs += VAD_FRAME_MS;
      this.#lastVoicedEnd = endMs;
      this.#segmentEnd = endMs;
      if (!this.#inSpeech && this.#voicedMs >= this.#minSpeechMs) {
        this.#inSpeech = true;
        events.push({ type: "speech_start", atMs: this.#segmentStart });
      }
      return;
    }
    if (this.#voicedMs === 0) return;
    if (
      frame.active && this.#segmentEnd === atMs &&
      endMs - this.#lastVoicedEnd <= MAX_TRAIL_MS
    ) {
      this.#segmentEnd = endMs;
    }
    if (endMs - this.#lastVoicedEnd >= this.#minSilenceMs) {
      if (this.#inSpeech) this.#endSegment(events);
      else this.#voicedMs = 0;
    }
  }

  #endSegment(events: VadEvent[]): void {
    events.push({
      type: "speech_end",
      atMs: this.#segmentEnd,
      durationMs: this.#segmentEnd - this.#segmentStart,
      voicedMs: this.#voicedMs,
    });
    this.#inSpeech = false;
    this.#voicedMs = 0;
  }
}
