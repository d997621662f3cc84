/**
 * The self-interruption guard: tells the bot's own voice coming back in the
 * caller's audio (a speakerphone, a loud handset) from the caller talking.
 * Pure: it is told what the bot sent and when, and what the caller's line
 * carried and when, on one clock.
 *
 * The echo of the bot's voice is its outgoing audio, late by the round trip
 * (100–300 ms) and at least {@linkcode DEFAULT_ECHO_GUARD}`.echoLossDb`
 * down. So for each 10 ms block of caller audio the guard predicts the
 * loudest echo it could hold: the loudest block of the bot's audio that
 * could have come back at that moment, less the echo loss. A caller block no
 * louder than that (plus a margin) is explained by echo and is not the
 * caller's voice; a caller talking into the phone stands well above it.
 *
 * Which of the bot's blocks could come back at a moment is a window, not a
 * point: the player sends audio up to its lead ahead of playing it, and the
 * line's delay varies. The guard takes every block from `minDelayMs` after
 * it was sent to `maxDelayMs` after it played, both widened by `slackMs`.
 * Levels compare per block, not per sample, so no sample alignment is
 * needed and the cost is a few additions per sample while the bot speaks;
 * with nothing the bot said in the window, a caller frame costs nothing.
 *
 * @module
 */

/** Settings of an {@linkcode EchoGuard}. */
export interface EchoGuardOptions {
  /** Least round trip from the bot's audio to its echo, in ms. */
  minDelayMs: number;
  /** Longest round trip, in ms. */
  maxDelayMs: number;
  /** Added on both sides of the window: network jitter, burst delivery. */
  slackMs: number;
  /** How far below the bot's voice its echo is at least, in dB. */
  echoLossDb: number;
  /** How far above the predicted echo caller audio must be to be the caller's, in dB. */
  marginDb: number;
}

/**
 * The line contract: echo 100–300 ms late, 15 dB or more down; 100 ms of
 * slack each side; caller audio counts as the caller's 3 dB above the
 * loudest echo possible.
 */
export const DEFAULT_ECHO_GUARD: EchoGuardOptions = {
  minDelayMs: 100,
  maxDelayMs: 300,
  slackMs: 100,
  echoLossDb: 15,
  marginDb: 3,
};

/** Length of the blocks levels are compared on, in ms. */
export const ECHO_BLOCK_MS = 10;

/** Caller blocks remembered, for a detector that judges audio a moment late: 4 s. */
const CALLER_BLOCKS = 400;

/** Below this level (dB, 16-bit scale; about -78 dBFS) a block is silence, never echo. */
const SILENT_DB = 12;

/**
 * The level of 16-bit samples `[from, to)` of `view`, in dB on the
 * 16-bit scale, as the voice-activity detectors measure it.
 */
function levelDb(view: DataView, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const sample = view.getInt16(i * 2, true);
    sum += sample * sample;
  }
  return 10 * Math.log10(sum / Math.max(1, to - from) + 1);
}

/**
 * Judges caller audio against the bot's own recent audio.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EchoGuard } from "./echo_guard.ts";
 *
 * const tone = (amplitude: number, ms: number) => {
 *   const pcm = new Int16Array(8 * ms);
 *   for (let i = 0; i < pcm.length; i++) {
 *     pcm[i] = Math.round(amplitude * Math.sin(i / 3));
 *   }
 *   return new Uint8Array(pcm.buffer);
 * };
 * const guard = new EchoGuard(8000);
 * guard.sent(tone(8000, 200), { sentAt: 0, startsAt: 0 });
 * guard.heard(tone(800, 100), 250); // 20 dB down, 150 ms late: echo
 * assertEquals(guard.isEcho(0, 100), true);
 * guard.heard(tone(8000, 100), 350); // as loud as the bot: the caller
 * assertEquals(guard.isEcho(100, 100), false);
 * ```
 */
export class EchoGuard {
  #options: EchoGuardOptions;
  #sampleRate: number;
  #blockSamples: number;
  /** The bot's blocks that may still come back: when each may, and its level. */
  #refFrom: number[] = [];
  #refUntil: number[] = [];
  #refLevel: number[] = [];
  /** Per caller block, by position: 1 when explained by echo. */
  #explained = new Uint8Array(CALLER_BLOCKS);
  /** Caller samples heard so far. */
  #heardSamples = 0;
  /** Caller samples of the block in progress, and its sum of squares. */
  #partialSamples = 0;
  #partialSum = 0;
  #echoBlocks = 0;

  /** Creates a guard for a call at `sampleRate`. */
  constructor(
    sampleRate: number,
    options: Partial<EchoGuardOptions> = {},
  ) {
    this.#sampleRate = sampleRate;
    this.#blockSamples = Math.round(sampleRate * ECHO_BLOCK_MS / 1000);
    this.#options = { ...DEFAULT_ECHO_GUARD, ...options };
  }

  /** Caller audio judged so far, in ms. */
  get audioMs(): number {
    return this.#heardSamples * 1000 / this.#sampleRate;
  }

  /** Caller audio, in ms, explained by the bot's echo so far: what the guard kept from counting as the caller. */
  get echoMs(): number {
    return this.#echoBlocks * ECHO_BLOCK_MS;
  }

  /**
   * The bot sent `pcm` (16-bit mono at the call's rate) at `sentAt`, to
   * start playing at `startsAt` (clock ms).
   */
  sent(pcm: Uint8Array, timing: { sentAt: number; startsAt: number }): void {
    const { minDelayMs, maxDelayMs, slackMs } = this.#options;
    this.#forget(timing.sentAt);
    const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    const samples = pcm.length >> 1;
    for (let at = 0; at < samples; at += this.#blockSamples) {
      const end = Math.min(samples, at + this.#blockSamples);
      const level = levelDb(view, at, end);
      if (level < SILENT_DB) continue;
      const playsAt = timing.startsAt + at * 1000 / this.#sampleRate;
      const playsFor = (end - at) * 1000 / this.#sampleRate;
      this.#refFrom.push(timing.sentAt + minDelayMs - slackMs);
      this.#refUntil.push(playsAt + playsFor + maxDelayMs + slackMs);
      this.#refLevel.push(level);
    }
  }

  /**
   * Caller audio `pcm` (16-bit mono at the call's rate) whose last sample
   * arrived at `at` (clock ms): each of its blocks is judged now.
   */
  heard(pcm: Uint8Array, at: number): void {
    const samples = pcm.length >> 1;
    if (samples === 0) return;
    this.#forget(at - samples * 1000 / this.#sampleRate);
    if (this.#refLevel.length === 0) {
      // Nothing the bot said can be on the line: nothing is echo.
      this.#skip(samples);
      return;
    }
    const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    const msPerSample = 1000 / this.#sampleRate;
    for (let i = 0; i < samples; i++) {
      const sample = view.getInt16(i * 2, true);
      this.#partialSum += sample * sample;
      this.#heardSamples++;
      if (++this.#partialSamples < this.#blockSamples) continue;
      const level = 10 *
        Math.log10(this.#partialSum / this.#partialSamples + 1);
      const blockAt = at - (samples - 1 - i) * msPerSample;
      this.#close(level >= SILENT_DB && this.#explains(level, blockAt));
    }
  }

  /**
   * Whether most of the caller's audio from `atMs` for `durationMs` (ms of
   * caller audio, counted from the first sample heard) was the bot's echo.
   */
  isEcho(atMs: number, durationMs: number): boolean {
    const first = Math.floor(atMs / ECHO_BLOCK_MS);
    const last = Math.min(
      Math.ceil((atMs + durationMs) / ECHO_BLOCK_MS),
      Math.floor(this.#heardSamples / this.#blockSamples),
    );
    const oldest = last - CALLER_BLOCKS;
    let echo = 0;
    let total = 0;
    for (let block = Math.max(first, oldest, 0); block < last; block++) {
      total++;
      echo += this.#explained[block % CALLER_BLOCKS];
    }
    return total > 0 && echo * 2 >= total;
  }

  /** Whether a caller block at `level` (dB) heard at `at` may be the bot's echo. */
  #explains(level: number, at: number): boolean {
    const { echoLossDb, marginDb } = this.#options;
    let loudest = -Infinity;
    for (let i = 0; i < this.#refLevel.length; i++) {
      if (
        this.#refFrom[i] <= at && at <= this.#refUntil[i] &&
        this.#refLevel[i] > loudest
      ) loudest = this.#refLevel[i];
    }
    return level <= loudest - echoLossDb + marginDb;
  }

  /** Ends the caller block in progress: the one holding the last sample heard. */
  #close(explained: boolean): void {
    const block = this.#heardSamples / this.#blockSamples - 1;
    this.#explained[block % CALLER_BLOCKS] = explained ? 1 : 0;
    if (explained) this.#echoBlocks++;
    this.#partialSamples = 0;
    this.#partialSum = 0;
  }

  /** Advances over `samples` of caller audio that no echo can explain, without reading it. */
  #skip(samples: number): void {
    let left = samples;
    while (left > 0) {
      const take = Math.min(left, this.#blockSamples - this.#partialSamples);
      this.#partialSamples += take;
      this.#heardSamples += take;
      left -= take;
      if (this.#partialSamples === this.#blockSamples) this.#close(false);
    }
  }

  /** Drops the bot's blocks that can no longer come back at or after `at`. */
  #forget(at: number): void {
    let keep = 0;
    while (keep < this.#refUntil.length && this.#refUntil[keep] < at) keep++;
    // Blocks are pushed in sending order, so those that expired are nearly
    // always first; one that expires later than a newer one waits a little.
    if (keep === 0) return;
    this.#refFrom.splice(0, keep);
    this.#refUntil.splice(0, keep);
    this.#refLevel.splice(0, keep);
  }
}
