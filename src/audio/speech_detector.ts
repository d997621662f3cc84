/**
 * The voice-activity detector a call uses, whichever it is: the energy and
 * periodicity detector of `vad.ts` (synchronous, no model) or the Silero
 * neural detector of `silero_vad.ts` (an ONNX model, answers a moment after
 * the audio is pushed). Both report through callbacks, so callers handle
 * the two the same way.
 *
 * @module
 */

import {
  VAD_FRAME_MS,
  type VadEvent,
  type VadOptions,
  VoiceActivityDetector,
} from "./vad.ts";

/** Which detector: `VAD=silero|energy`. */
export type SpeechDetectorKind = "energy" | "silero";

/** The accepted values of `VAD`. */
export const SPEECH_DETECTOR_KINDS: readonly SpeechDetectorKind[] = [
  "silero",
  "energy",
];

/** What a detector made of one analysis window. */
export interface SpeechFrame {
  /** Where the window starts, in ms of audio. */
  atMs: number;
  /** Its length in ms: 20 for the energy detector, 32 for Silero. */
  durationMs: number;
  /** Whether the window is speech. */
  isSpeech: boolean;
  /** Speech probability, 0 to 1. */
  probability: number;
}

/** Options of a {@linkcode SpeechDetectorFactory}. */
export interface SpeechDetectorOptions
  extends Pick<VadOptions, "minSpeechMs" | "minSilenceMs" | "threshold"> {
  /** Called with every analysed window, in order. */
  onFrame?(frame: SpeechFrame): void;
  /**
   * Called after each stretch of audio is analysed, with the events it
   * completed (often none), in order. Synchronously inside `push` for the
   * energy detector; a little later for Silero.
   */
  onAnalysed?(events: VadEvent[]): void;
  /**
   * Whether the caller's audio from `atMs` for `durationMs` was the bot's
   * own voice coming back (see `echo_guard.ts`): such audio never counts
   * toward {@linkcode SpeechDetector.foregroundMs}.
   */
  isEcho?(atMs: number, durationMs: number): boolean;
}

/**
 * How far above the line's background (dB) speech must be to count as the
 * caller's foreground voice: babble, TV and music at a steady level stay
 * under it, a caller talking into the phone rises above it.
 */
export const FOREGROUND_DB = 6;

/** How much of the past the background level covers, in ms. */
export const BACKGROUND_MS = 2000;

/**
 * The line's background level: the median level of the analysis windows of
 * the last {@linkcode BACKGROUND_MS}. A steady noise (babble, music, TV, a
 * fan) sets it; short bursts of speech do not, since they fill less than
 * half of the span. Before any history the line's first window is taken as
 * background: what the caller's line sounds like when the call opens.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const background = new BackgroundLevel(20);
 * assertEquals(background.prominence(40), 0); // the first window is the background
 * assertEquals(background.prominence(40), 0);
 * assertEquals(background.prominence(60), 20); // 20 dB above the median
 * ```
 */
export class BackgroundLevel {
  /** The levels in the order they came, a ring. */
  #levels: Float64Array;
  /** The same levels, kept sorted as they come and go. */
  #sorted: Float64Array;
  #count = 0;
  #next = 0;

  /** Creates a tracker over `windowMs` windows covering {@linkcode BACKGROUND_MS}. */
  constructor(windowMs: number) {
    const size = Math.max(1, Math.round(BACKGROUND_MS / windowMs));
    this.#levels = new Float64Array(size);
    this.#sorted = new Float64Array(size);
  }

  /** How far `levelDb` stands above the background (dB, 0 or more); then adds it to the history. */
  prominence(levelDb: number): number {
    const sorted = this.#sorted;
    let count = this.#count;
    const above = count > 0 ? Math.max(0, levelDb - sorted[count >> 1]) : 0;
    // Once full, the oldest level leaves the sorted copy before the new one
    // goes in: two shifts of a short array instead of a sort per window.
    if (count === this.#levels.length) {
      const at = firstAtLeast(sorted, count, this.#levels[this.#next]);
      sorted.copyWithin(at, at + 1, count);
      count--;
    }
    const at = firstAtLeast(sorted, count, levelDb);
    sorted.copyWithin(at + 1, at, count);
    sorted[at] = levelDb;
    this.#count = count + 1;
    this.#levels[this.#next] = levelDb;
    this.#next = (this.#next + 1) % this.#levels.length;
    return above;
  }
}

/** The first index of `sorted[0..count)` whose value is `value` or more. */
function firstAtLeast(
  sorted: Float64Array,
  count: number,
  value: number,
): number {
  let low = 0;
  let high = count;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle] < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A streaming voice-activity detector for one call. */
export interface SpeechDetector {
  /** Which kind it is. */
  readonly kind: SpeechDetectorKind;
  /** The input rate. */
  readonly sampleRate: number;
  /** Milliseconds of audio analysed so far. */
  readonly audioMs: number;
  /** Speech in the current segment or candidate, in ms; 0 in silence. */
  readonly speechMs: number;
  /**
   * The part of {@linkcode SpeechDetector.speechMs} that stood
   * {@linkcode FOREGROUND_DB} above the line's background: what a barge-in
   * on voice alone counts, so that steady babble, TV or music never
   * interrupts the bot.
   */
  readonly foregroundMs: number;
  /** Whether the stream is between a `speech_start` and its `speech_end`. */
  readonly inSpeech: boolean;
  /** Adds 16-bit mono PCM (any length); results arrive through the callbacks. */
  push(pcm: Uint8Array): void;
  /** Resolves once everything pushed so far has been analysed; nothing more is analysed after it. */
  close(): Promise<void>;
}

/** Creates a detector for one call at `sampleRate`. */
export type SpeechDetectorFactory = (
  sampleRate: number,
  options?: SpeechDetectorOptions,
) => SpeechDetector;

/**
 * The energy and periodicity detector behind the {@linkcode SpeechDetector}
 * interface: cheap, synchronous, no model.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const analysed: unknown[][] = [];
 * const detector = energyDetector(8000, {
 *   onAnalysed: (events) => analysed.push(events),
 * });
 * detector.push(new Uint8Array(320)); // 20 ms of silence
 * assertEquals(analysed, [[]]); // analysed at once, nothing happened
 * assertEquals(detector.audioMs, 20);
 * assertEquals(detector.inSpeech, false);
 * await detector.close();
 * ```
 */
export function energyDetector(
  sampleRate: number,
  options: SpeechDetectorOptions = {},
): SpeechDetector {
  return new EnergySpeechDetector(sampleRate, options);
}

class EnergySpeechDetector implements SpeechDetector {
  readonly kind = "energy";
  #vad: VoiceActivityDetector;
  #onAnalysed: ((events: VadEvent[]) => void) | undefined;
  #closed = false;
  #background = new BackgroundLevel(VAD_FRAME_MS);
  #foregroundMs = 0;

  constructor(sampleRate: number, options: SpeechDetectorOptions) {
    const { onFrame } = options;
    this.#vad = new VoiceActivityDetector(sampleRate, {
      minSpeechMs: options.minSpeechMs,
      minSilenceMs: options.minSilenceMs,
      threshold: options.threshold,
      onFrame: (frame) => {
        const above = this.#background.prominence(frame.levelDb);
        if (
          frame.isSpeech && above >= FOREGROUND_DB &&
          !options.isEcho?.(frame.atMs, VAD_FRAME_MS)
        ) {
          this.#foregroundMs += VAD_FRAME_MS;
        }
        onFrame?.({
          atMs: frame.atMs,
          durationMs: VAD_FRAME_MS,
          isSpeech: frame.isSpeech,
          probability: frame.probability,
        });
      },
    });
    this.#onAnalysed = options.onAnalysed;
  }

  get sampleRate(): number {
    return this.#vad.sampleRate;
  }

  get audioMs(): number {
    return this.#vad.audioMs;
  }

  get speechMs(): number {
    return this.#vad.speechMs;
  }

  get foregroundMs(): number {
    return this.#foregroundMs;
  }

  get inSpeech(): boolean {
    return this.#vad.inSpeech;
  }

  push(pcm: Uint8Array): void {
    if (this.#closed) return;
    const events = this.#vad.push(pcm);
    if (this.#vad.speechMs === 0) this.#foregroundMs = 0;
    this.#onAnalysed?.(events);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
