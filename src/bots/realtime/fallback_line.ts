/**
 * The recorded line a speech-to-speech bot plays when its model fails: a
 * realtime model that is gone cannot say anything, and no other voice may
 * be configured, so the words ship with exovoice as a 16 kHz WAV.
 *
 * @module
 */

import type { SampleRate } from "../../audio/pcm.ts";
import { resampleAll } from "../../audio/resample.ts";
import { decodeWav } from "../../audio/wav.ts";

/** What the recording says. */
export const FALLBACK_LINE_TEXT =
  "Sorry, I'm having trouble right now. Please call again in a little while.";

const RECORDING = new URL(
  "../../../assets/fallback_line_16000.wav",
  import.meta.url,
);

/**
 * The fallback recording at each call rate, read once and converted once
 * per rate.
 *
 * @example
 * ```ts
 * import { assert, assertStrictEquals } from "@std/assert";
 * const line = new FallbackLine();
 * const pcm = await line.pcm(8000);
 * assert(pcm.length > 8000 * 2, "more than a second of speech");
 * // Converted once per rate: the next call at 8 kHz gets the same bytes.
 * assertStrictEquals(await line.pcm(8000), pcm);
 * ```
 */
export class FallbackLine {
  #byRate = new Map<SampleRate, Promise<Uint8Array>>();
  #wav: Promise<{ sampleRate: number; pcm: Uint8Array }> | undefined;
  #recording: URL;

  /** Reads `recording` (a mono 16-bit WAV), the bundled fallback line by default. */
  constructor(recording: URL = RECORDING) {
    this.#recording = recording;
  }

  /** The recording as 16-bit PCM at `rate`. */
  pcm(rate: SampleRate): Promise<Uint8Array> {
    let pcm = this.#byRate.get(rate);
    if (!pcm) {
      pcm = this.#read().then((wav) =>
        wav.sampleRate === rate
          ? wav.pcm
          : resampleAll(wav.pcm, { fromRate: wav.sampleRate, toRate: rate })
      );
      this.#byRate.set(rate, pcm);
    }
    return pcm;
  }

  #read(): Promise<{ sampleRate: number; pcm: Uint8Array }> {
    this.#wav ??= Deno.readFile(this.#recording).then((bytes) => {
      const wav = decodeWav(bytes);
      return { sampleRate: wav.sampleRate, pcm: wav.pcm };
    });
    return this.#wav;
  }
}
