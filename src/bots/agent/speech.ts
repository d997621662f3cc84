/**
 * Text to call-rate PCM: one text-to-speech request streamed into an
 * {@linkcode AudioTrack}, resampled on the way when the vendor could not
 * produce the call's rate; and the tone played when no voice is available.
 *
 * @module
 */

import { Resampler, ResamplerConfigError } from "../../audio/resample.ts";
import { ProviderError } from "../../providers/provider_error.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import type { AudioTrack } from "./audio_track.ts";
import {
  spokenForm,
  type SpokenFormsMode,
  spokenLanguage,
} from "./spoken_forms.ts";

/** Options of {@linkcode synthesizeInto}. */
export interface SynthesizeOptions {
  /** The vendor. */
  tts: TextToSpeech;
  /** The call's rate: what the track holds. */
  sampleRate: number;
  /** BCP 47 language. */
  language: string;
  /** `AGENT_SPOKEN_FORMS`: whether the vendor gets the text's spoken form ("one lakh rupees" for "₹1,00,000"). Default `off`. */
  spokenForms?: SpokenFormsMode;
  /** Aborts the request (barge-in). */
  signal?: AbortSignal;
  /** Called when the first audio byte arrives. */
  onFirstByte?(): void;
}

/**
 * Synthesises `text` (in its spoken form, when `spokenForms` says so) into
 * `track` as the audio arrives, then ends the track.
 * On failure the track is failed (its readers just end) and the error is
 * thrown; an abort ends the track quietly.
 *
 * @throws {ProviderError} when the vendor fails, or answers at a rate that
 * cannot be converted.
 */
export async function synthesizeInto(
  track: AudioTrack,
  text: string,
  options: SynthesizeOptions,
): Promise<void> {
  const { tts, sampleRate, language, signal } = options;
  try {
    // Only the voice hears the spoken form: transcripts and the model's
    // history keep what the model wrote.
    const said = spokenLanguage(options.spokenForms ?? "off", language)
      ? spokenForm(text, { language })
      : text;
    const synthesis = await tts.synthesize(said, {
      sampleRate,
      language,
      signal,
    });
    let resampler: Resampler | undefined;
    if (synthesis.sampleRate !== sampleRate) {
      try {
        resampler = new Resampler(synthesis.sampleRate, sampleRate);
      } catch (error) {
        if (!(error instanceof ResamplerConfigError)) throw error;
        throw new ProviderError(tts.name, {
          kind: "protocol",
          message:
            `Text-to-speech from ${tts.name} came at ${synthesis.sampleRate} Hz, which cannot be converted to ${sampleRate} Hz`,
          cause: error,
        });
      }
    }
    let first = true;
    for await (const piece of synthesis.audio) {
      if (signal?.aborted) break;
      if (first) {
        first = false;
        options.onFirstByte?.();
      }
      track.append(resampler ? resampler.push(piece) : piece);
    }
    if (resampler && !signal?.aborted) track.append(resampler.flush());
    track.end();
  } catch (error) {
    if (signal?.aborted) {
      track.end();
      return;
    }
    track.fail(error);
    throw error;
  }
}

/**
 * A soft two-note chime (about 0.8 s) at `sampleRate`: what the caller hears
 * when something failed and not even the fallback line could be
 * synthesised, so the line never goes silent.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * // 800 ms at 8 kHz, 16-bit: 12,800 bytes.
 * assertEquals(fallbackTone(8000).length, 12_800);
 * assertEquals(fallbackTone(16000).length, 25_600);
 * ```
 */
export function fallbackTone(sampleRate: number): Uint8Array {
  const notes: [hz: number, ms: number][] = [
    [660, 250],
    [0, 100],
    [495, 350],
    [0, 100],
  ];
  const total = notes.reduce(
    (sum, [, ms]) => sum + Math.round(sampleRate * ms / 1000),
    0,
  );
  const pcm = new Uint8Array(total * 2);
  const view = new DataView(pcm.buffer);
  let at = 0;
  for (const [hz, ms] of notes) {
    const count = Math.round(sampleRate * ms / 1000);
    // A short fade in and out keeps the notes from clicking.
    const fade = Math.min(count / 2, sampleRate * 0.02);
    for (let i = 0; i < count; i++) {
      const envelope = Math.min(1, i / fade, (count - 1 - i) / fade);
      const value = hz === 0
        ? 0
        : 3000 * envelope * Math.sin(2 * Math.PI * hz * i / sampleRate);
      view.setInt16((at + i) * 2, Math.round(value), true);
    }
    at += count;
  }
  return pcm;
}
