/**
 * The caller's side of a simulated call as one timeline: pieces of PCM placed
 * at time offsets, mixed where they overlap, silence everywhere else. Pure.
 *
 * @module
 */

import { BYTES_PER_SAMPLE } from "../src/audio/pcm.ts";

const INT16_MIN = -32768;
const INT16_MAX = 32767;

interface Source {
  startSample: number;
  samples: number;
  view: DataView;
  pcm: Uint8Array;
}

/**
 * Caller audio laid out on the call's clock, cut into frames on demand.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const audio = new CallerAudio(8000);
 * audio.add(new Uint8Array(16000), 0); // one second from the start
 * audio.add(new Uint8Array(8000), 2000); // half a second at 2 s
 * assertEquals(audio.endMs, 2500);
 * assertEquals(audio.frame(1000, 100), undefined); // nothing plays from 1.0 s to 1.1 s
 * ```
 */
export class CallerAudio {
  #sampleRate: number;
  #sources: Source[] = [];
  #endSample = 0;

  /** Creates an empty timeline for audio at `sampleRate`. */
  constructor(sampleRate: number) {
    this.#sampleRate = sampleRate;
  }

  /**
   * Places `pcm` (16-bit little-endian mono) to start at `atMs`; an odd
   * trailing byte is ignored, as it is half a sample.
   */
  add(pcm: Uint8Array, atMs: number): void {
    const samples = Math.floor(pcm.length / BYTES_PER_SAMPLE);
    if (samples === 0) return;
    const startSample = this.#sampleAt(atMs);
    this.#sources.push({
      startSample,
      samples,
      pcm,
      view: new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength),
    });
    this.#endSample = Math.max(this.#endSample, startSample + samples);
  }

  /** When the last placed audio ends, in ms from the start of the call. */
  get endMs(): number {
    return this.#endSample * 1000 / this.#sampleRate;
  }

  /**
   * Returns the PCM playing from `startMs` for `ms`, or `undefined` when no
   * audio overlaps that span (pure silence, which callers can encode once).
   */
  frame(startMs: number, ms: number): Uint8Array | undefined {
    const from = this.#sampleAt(startMs);
    const to = from + this.#sampleAt(ms);
    const overlapping = this.#sources.filter((source) =>
      source.startSample < to && source.startSample + source.samples > from
    );
    if (overlapping.length === 0) return undefined;
    const out = new Uint8Array((to - from) * BYTES_PER_SAMPLE);
    if (overlapping.length === 1) {
      const [source] = overlapping;
      const first = Math.max(from, source.startSample);
      const last = Math.min(to, source.startSample + source.samples);
      out.set(
        source.pcm.subarray(
          (first - source.startSample) * BYTES_PER_SAMPLE,
          (last - source.startSample) * BYTES_PER_SAMPLE,
        ),
        (first - from) * BYTES_PER_SAMPLE,
      );
      return out;
    }
    const mixed = new Int32Array(to - from);
    for (const source of overlapping) {
      const first = Math.max(from, source.startSample);
      const last = Math.min(to, source.startSample + source.samples);
      for (let sample = first; sample < last; sample++) {
        mixed[sample - from] += source.view.getInt16(
          (sample - source.startSample) * BYTES_PER_SAMPLE,
          true,
        );
      }
    }
    const outView = new DataView(out.buffer);
    for (let index = 0; index < mixed.length; index++) {
      const value = Math.min(INT16_MAX, Math.max(INT16_MIN, mixed[index]));
      outView.setInt16(index * BYTES_PER_SAMPLE, value, true);
    }
    return out;
  }

  #sampleAt(ms: number): number {
    return Math.round(ms * this.#sampleRate / 1000);
  }
}
